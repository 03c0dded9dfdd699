//! The Python package (python/) and `crv.spark` on a local Spark, driven by pytest
//! (tests/python/test_crv.py) in the virtual environment that tests/python/setup.sh makes: the
//! package's scores, tiers, ranks and selections equal this build's command line on the same
//! customers, text ids round-trip, errors carry the command line's messages, and Spark (local[2],
//! several partitionings) scores and selects the single machine's proven optimum.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The newest modification time among the files under `path`.
fn newest(path: &Path) -> SystemTime {
    let meta = std::fs::metadata(path).unwrap();
    if !meta.is_dir() {
        return meta.modified().unwrap();
    }
    std::fs::read_dir(path)
        .unwrap()
        .map(|entry| newest(&entry.unwrap().path()))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The installed native module, if the package is installed in `venv`.
fn installed_module(venv: &Path) -> Option<PathBuf> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    lib.filter_map(|entry| {
        let package = entry.ok()?.path().join("site-packages/crv");
        std::fs::read_dir(package).ok()?.find_map(|file| {
            let path = file.ok()?.path();
            let name = path.file_name()?.to_str()?;
            (name.starts_with("_native") && name.ends_with(".so")).then_some(path)
        })
    })
    .next()
}

#[test]
fn the_python_package_and_spark_agree_with_the_command_line() {
    if std::env::var_os("CRV_SKIP_PYTHON_TESTS").is_some_and(|v| v == "1") {
        eprintln!("CRV_SKIP_PYTHON_TESTS=1: the Python and Spark tests are skipped");
        return;
    }
    let venv = root().join("target/python-venv");
    let setup = "run tests/python/setup.sh (it makes target/python-venv and installs the package \
                 built from this checkout; .ci/run does), or set CRV_SKIP_PYTHON_TESTS=1 to skip \
                 these tests on this machine";
    let module = installed_module(&venv).unwrap_or_else(|| {
        panic!(
            "the crv package is not installed in {}: {setup}",
            venv.display()
        )
    });
    // The package must be built from these sources, not an older checkout.
    let sources = [
        "src",
        "python/src",
        "python/crv",
        "Cargo.toml",
        "python/Cargo.toml",
        "pyproject.toml",
    ]
    .iter()
    .map(|path| newest(&root().join(path)))
    .max()
    .unwrap();
    assert!(
        std::fs::metadata(&module).unwrap().modified().unwrap() >= sources,
        "the installed crv package ({}) is older than the sources: {setup}",
        module.display()
    );
    let output = Command::new(venv.join("bin/python"))
        .current_dir(root())
        .env("CRV_BIN", env!("CARGO_BIN_EXE_crv"))
        .env("PYSPARK_PYTHON", venv.join("bin/python"))
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/python",
        ])
        .output()
        .expect("the venv's python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "pytest failed:\n{stdout}\n{stderr}"
    );
    assert!(
        !stdout.contains("skipped"),
        "pytest skipped a test:\n{stdout}"
    );
}
