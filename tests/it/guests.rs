//! The guest plugins of `guest-plugins/` (the examples and the hostile plugins), compiled
//! once per test process for `wasm32-wasip2` with the `cargo` that runs the tests.
//!
//! Components land in `$CARGO_TARGET_DIR/guests`, or in `<target>/guests` beside the test
//! binary when `CARGO_TARGET_DIR` is unset, so they never mix with the host's artifacts.
//! The build runs at most once per process: every test that needs a component waits for
//! the first one's build, and a failed build fails each of them with cargo's output.
//! Also the `edgekeeper plugin` command-line helpers both plugin suites use.

use crate::harness::{edgekeeper_bin, run_bounded};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository root (the parent of `tests/`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_owned()
}

/// `guest-plugins/<rel>`, e.g. `guest_dir("examples/hpa-policy/manifest.toml")`.
pub(crate) fn guest_dir(rel: &str) -> PathBuf {
    repo().join("guest-plugins").join(rel)
}

/// `guest-plugins/examples/<name>`, e.g. `example_dir("hpa-policy")`: its `manifest.toml`
/// and `fixtures/`.
pub(crate) fn example_dir(name: &str) -> PathBuf {
    repo().join("guest-plugins/examples").join(name)
}

/// `guest-plugins/hostile/<name>`, e.g. `hostile_dir("spin")`: its `manifest.toml`.
pub(crate) fn hostile_dir(name: &str) -> PathBuf {
    repo().join("guest-plugins/hostile").join(name)
}

/// Where the guest workspace is built: `$CARGO_TARGET_DIR/guests`, else `guests/` in the
/// target directory that holds this test binary (`<target>/<profile>/deps/it-<hash>`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("guests");
    }
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .expect("the test binary lives in <target>/<profile>/deps")
        .join("guests")
}

/// Builds every guest once; the directory of the components, or cargo's complaint.
fn build() -> &'static Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = target_dir();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .arg("--manifest-path")
            .arg(repo().join("guest-plugins/Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target);
        // No deadline: a first build on a busy machine may take minutes, and cargo ends.
        let output = match command.output() {
            Ok(output) => output,
            Err(error) => return Err(format!("cannot run cargo for the guest plugins: {error}")),
        };
        if output.status.success() {
            Ok(target.join("wasm32-wasip2/release"))
        } else {
            Err(format!(
                "building the guest plugins failed ({}); is the target installed \
                 (`rustup target add wasm32-wasip2`)?\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    })
}

/// The component of guest crate `crate_name` (its library name, with underscores:
/// `wasm("hpa_policy")`), building the guests first if this process has not yet.
pub(crate) fn wasm(crate_name: &str) -> PathBuf {
    let dir = match build() {
        Ok(dir) => dir,
        Err(message) => panic!("{message}"),
    };
    let path = dir.join(format!("{crate_name}.wasm"));
    assert!(
        path.is_file(),
        "{} was not built: is {crate_name} a member of guest-plugins/?",
        path.display()
    );
    path
}

/// Runs `edgekeeper plugin <args>` to completion.
pub(crate) fn plugin<S: AsRef<OsStr>>(args: &[S]) -> Output {
    let mut command = Command::new(edgekeeper_bin());
    command.arg("plugin").args(args);
    let what: Vec<String> = args
        .iter()
        .map(|arg| arg.as_ref().to_string_lossy().into_owned())
        .collect();
    run_bounded(command, &format!("edgekeeper plugin {}", what.join(" ")))
}

/// Both output streams, for messages.
pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `edgekeeper plugin install <component> --manifest <manifest> --server <server> <extra>`.
pub(crate) fn install_output(
    server: &str,
    component: &Path,
    manifest: &Path,
    extra: &[&str],
) -> Output {
    let mut args = vec![
        OsStr::new("install"),
        component.as_os_str(),
        OsStr::new("--manifest"),
        manifest.as_os_str(),
        OsStr::new("--server"),
        OsStr::new(server),
    ];
    args.extend(extra.iter().map(OsStr::new));
    plugin(&args)
}

/// `edgekeeper plugin install`, which must succeed (it waits until every node loaded it).
pub(crate) fn install(server: &str, component: &Path, manifest: &Path) {
    let output = install_output(server, component, manifest, &["--wait-ms", "180000"]);
    assert!(
        output.status.success(),
        "installing {} with {} failed: {}",
        component.display(),
        manifest.display(),
        text(&output)
    );
}
