//! The op mix (`--mix getData=90,setData=10`) and the seeded PRNG that draws from it.

use std::fmt;
use std::str::FromStr;

/// One kind of request the load mode issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// create of a new, unique persistent node holding a value.
    Create,
    /// setData of a random existing key, any version.
    SetData,
    /// getData of a random existing key, no watch.
    GetData,
    /// exists of a random existing key, no watch.
    Exists,
    /// multi of `--multi-size` setData ops on random keys.
    Multi,
}

impl OpKind {
    /// Every kind, in report order.
    pub const ALL: [OpKind; 5] = [
        OpKind::Create,
        OpKind::SetData,
        OpKind::GetData,
        OpKind::Exists,
        OpKind::Multi,
    ];

    /// The name used in `--mix` and in reports: ZooKeeper's API name.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::SetData => "setData",
            OpKind::GetData => "getData",
            OpKind::Exists => "exists",
            OpKind::Multi => "multi",
        }
    }

    /// Whether the op changes the tree (and so goes through the leader and the log).
    pub fn is_write(self) -> bool {
        matches!(self, OpKind::Create | OpKind::SetData | OpKind::Multi)
    }

    /// The kind named `name`, ignoring ASCII case (`setdata` is `setData`).
    pub fn from_name(name: &str) -> Option<OpKind> {
        OpKind::ALL
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(name))
    }

    /// Index into per-kind arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Relative weights of the op kinds, e.g. `getData=90,setData=10`. Weights need not add up
/// to 100; each op is drawn independently with probability weight / total.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpMix {
    /// The kinds with a non-zero weight, in the order given.
    weights: Vec<(OpKind, u32)>,
    /// The sum of the weights (> 0).
    total: u32,
}

impl OpMix {
    /// The kinds with a non-zero weight and their weights, in the order given.
    pub fn weights(&self) -> &[(OpKind, u32)] {
        &self.weights
    }

    /// Whether `kind` may be drawn.
    pub fn contains(&self, kind: OpKind) -> bool {
        self.weights.iter().any(|(k, _)| *k == kind)
    }

    /// Draws one kind.
    pub(crate) fn pick(&self, rng: &mut Rng) -> OpKind {
        let mut ticket = rng.below(u64::from(self.total)) as u32;
        for &(kind, weight) in &self.weights {
            if ticket < weight {
                return kind;
            }
            ticket -= weight;
        }
        // Unreachable: the ticket is below the total of the weights.
        self.weights[self.weights.len() - 1].0
    }
}

impl FromStr for OpMix {
    type Err = String;

    fn from_str(text: &str) -> Result<OpMix, String> {
        let mut weights: Vec<(OpKind, u32)> = Vec::new();
        let mut total: u32 = 0;
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (name, weight) = item
                .split_once('=')
                .ok_or_else(|| format!("'{item}': expected OP=WEIGHT, e.g. getData=90"))?;
            let kind = OpKind::from_name(name.trim()).ok_or_else(|| {
                format!("'{name}': unknown op (create, setData, getData, exists, multi)")
            })?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("'{item}': the weight must be a whole number"))?;
            if weights.iter().any(|(k, _)| *k == kind) {
                return Err(format!("'{name}' is given twice"));
            }
            total = total
                .checked_add(weight)
                .ok_or_else(|| "the weights add up to too much".to_owned())?;
            if weight > 0 {
                weights.push((kind, weight));
            }
        }
        if total == 0 {
            return Err("no op has a weight above 0".to_owned());
        }
        Ok(OpMix { weights, total })
    }
}

impl fmt::Display for OpMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (kind, weight)) in self.weights.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{kind}={weight}")?;
        }
        Ok(())
    }
}

/// SplitMix64: a tiny seeded PRNG, so a run with the same `--seed` draws the same ops and
/// keys in each session.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// A generator for one session: the run's seed mixed with the session's index.
    pub(crate) fn new(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng {
            state: seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F),
        };
        rng.next_u64();
        rng
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`bound` > 0), by Lemire's multiply-shift (the bias is far
    /// below anything a benchmark can see).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}
