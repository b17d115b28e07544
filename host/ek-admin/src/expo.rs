//! A strict parser and checker of the Prometheus text exposition format 0.0.4, for tests.
//!
//! It rejects what Prometheus would reject (bad names, bad escapes, unparsable values,
//! a `TYPE` after samples, a family split in two, a duplicate series) and checks the
//! histogram rules Prometheus assumes: `le` buckets ascending and cumulative, ending in
//! `+Inf`, which equals `_count`, and a `_sum` for each series.

use std::collections::{BTreeMap, HashSet};

/// Label pairs in the order written.
pub(crate) type Labels = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: Labels,
    pub(crate) value: f64,
}

impl Sample {
    pub(crate) fn label(&self, key: &str) -> Option<&str> {
        let (_, value) = self.labels.iter().find(|(name, _)| name == key)?;
        Some(value)
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Family {
    pub(crate) name: String,
    pub(crate) help: Option<String>,
    pub(crate) kind: String,
    pub(crate) samples: Vec<Sample>,
}

/// Parses `text` and checks every family; `Err` names the first offending line.
pub(crate) fn parse(text: &str) -> Result<Vec<Family>, String> {
    let mut families: Vec<Family> = Vec::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut series: HashSet<String> = HashSet::new();
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("output must end with a newline".into());
    }
    for (number, line) in text.lines().enumerate() {
        let at = |message: &str| format!("line {}: {message}: {line:?}", number + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            let keyword = words.next().unwrap_or_default();
            if keyword != "HELP" && keyword != "TYPE" {
                continue;
            }
            let name = words.next().ok_or_else(|| at("no metric name"))?;
            check_metric_name(name).map_err(|e| at(&e))?;
            let rest = words.next().unwrap_or_default();
            let family = family_for(&mut families, &mut finished, name).map_err(|e| at(&e))?;
            if keyword == "HELP" {
                if family.help.is_some() {
                    return Err(at("second HELP"));
                }
                family.help = Some(unescape_help(rest).map_err(|e| at(&e))?);
            } else {
                if !family.kind.is_empty() {
                    return Err(at("second TYPE"));
                }
                if !family.samples.is_empty() {
                    return Err(at("TYPE after samples"));
                }
                if !matches!(
                    rest,
                    "counter" | "gauge" | "histogram" | "summary" | "untyped"
                ) {
                    return Err(at("unknown type"));
                }
                family.kind = rest.to_string();
            }
            continue;
        }
        let sample = parse_sample(line).map_err(|e| at(&e))?;
        let family_name = base_name(&families, &sample.name);
        let family = family_for(&mut families, &mut finished, &family_name).map_err(|e| at(&e))?;
        let key = format!("{}{:?}", sample.name, sample.labels);
        if !series.insert(key) {
            return Err(at("duplicate series"));
        }
        family.samples.push(sample);
    }
    for family in &families {
        if family.kind == "histogram" {
            check_histogram(family)?;
        }
    }
    Ok(families)
}

/// The family a sample belongs to: the current family if the name is one of its
/// sample names (`_bucket`, `_sum`, `_count` for a histogram), else the name itself.
fn base_name(families: &[Family], sample_name: &str) -> String {
    if let Some(current) = families.last() {
        let suffixes: &[&str] = match current.kind.as_str() {
            "histogram" => &["_bucket", "_sum", "_count"],
            "summary" => &["", "_sum", "_count"],
            _ => &[""],
        };
        let own = suffixes
            .iter()
            .any(|suffix| sample_name == format!("{}{suffix}", current.name));
        if own {
            return current.name.clone();
        }
    }
    sample_name.to_string()
}

/// The family named `name`, which must be the current one or a new one: a family may
/// not reappear after another began.
fn family_for<'a>(
    families: &'a mut Vec<Family>,
    finished: &mut HashSet<String>,
    name: &str,
) -> Result<&'a mut Family, String> {
    let is_current = families.last().is_some_and(|family| family.name == name);
    if !is_current {
        if finished.contains(name) {
            return Err(format!("family {name} split in two"));
        }
        if let Some(previous) = families.last() {
            finished.insert(previous.name.clone());
        }
        families.push(Family {
            name: name.to_string(),
            ..Family::default()
        });
    }
    Ok(families.last_mut().expect("just ensured"))
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    check_metric_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = Labels::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(after_brace)?;
        labels = parsed;
        rest = after;
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before value")?;
    let mut fields = rest.split(' ');
    let value = parse_value(fields.next().unwrap_or_default())?;
    if let Some(timestamp) = fields.next() {
        timestamp.parse::<i64>().map_err(|_| "bad timestamp")?;
    }
    if fields.next().is_some() {
        return Err("trailing fields".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Parses `k="v",...}` and returns the pairs and the text after `}`.
fn parse_labels(mut text: &str) -> Result<(Labels, &str), String> {
    let mut labels = Labels::new();
    loop {
        if let Some(after) = text.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = text.find('=').ok_or("label without =")?;
        let key = &text[..eq];
        check_label_name(key)?;
        if labels.iter().any(|(name, _)| name == key) {
            return Err(format!("label {key} twice"));
        }
        let quoted = text[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => return Err(format!("bad escape \\{other}")),
                },
                (_, '\n') => return Err("raw newline in label value".into()),
                (_, ch) => value.push(ch),
            }
        };
        labels.push((key.to_string(), value));
        text = &quoted[end + 1..];
        text = text.strip_prefix(',').unwrap_or(text);
    }
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text
            .parse::<f64>()
            .map_err(|_| format!("bad value {text:?}")),
    }
}

fn unescape_help(text: &str) -> Result<String, String> {
    let mut help = String::new();
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        if ch == '\\' {
            match chars.next() {
                Some('\\') => help.push('\\'),
                Some('n') => help.push('\n'),
                other => return Err(format!("bad HELP escape {other:?}")),
            }
        } else {
            help.push(ch);
        }
    }
    Ok(help)
}

fn check_metric_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("bad metric name {name:?}"))
    }
}

fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!("bad label name {name:?}"))
    }
}

/// Per series (labels without `le`): buckets ascending by `le` and cumulative, the last
/// `+Inf` and equal to `_count`, and one `_sum`.
fn check_histogram(family: &Family) -> Result<(), String> {
    #[derive(Default)]
    struct Series {
        buckets: Vec<(f64, f64)>,
        sum: Option<f64>,
        count: Option<f64>,
    }
    let name = &family.name;
    let mut all: BTreeMap<String, Series> = BTreeMap::new();
    for sample in &family.samples {
        let rest: Labels = sample
            .labels
            .iter()
            .filter(|(k, _)| k != "le")
            .cloned()
            .collect();
        let series = all.entry(format!("{rest:?}")).or_default();
        if sample.name.ends_with("_bucket") {
            let le = sample
                .label("le")
                .ok_or(format!("{name}: bucket without le"))?;
            series.buckets.push((parse_value(le)?, sample.value));
        } else if sample.name.ends_with("_sum") {
            series.sum = Some(sample.value);
        } else {
            series.count = Some(sample.value);
        }
    }
    for (labels, series) in all {
        let at = |message: &str| format!("{name}{labels}: {message}");
        let pairs = series.buckets.windows(2);
        if !pairs.clone().all(|w| w[0].0 < w[1].0) {
            return Err(at("le not ascending"));
        }
        if !pairs.clone().all(|w| w[0].1 <= w[1].1) {
            return Err(at("buckets not cumulative"));
        }
        let (last_le, last_count) = *series.buckets.last().ok_or(at("no buckets"))?;
        if last_le != f64::INFINITY {
            return Err(at("no +Inf bucket"));
        }
        if series.count != Some(last_count) {
            return Err(at("_count differs from the +Inf bucket"));
        }
        if series.sum.is_none() {
            return Err(at("no _sum"));
        }
    }
    Ok(())
}
