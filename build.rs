//! Links the native glibc build with packed relative relocations (`-z pack-relative-relocs`,
//! DT_RELR) when the glibc it links against can load them: the same position-independent
//! executable (ASLR kept) with its relative relocations in about 1 KiB instead of 24 bytes
//! each in `.rela.dyn`, 65 KiB less in all (the host binary's 2 MiB size budget; BENCHMARKS.md).
//!
//! Only glibc 2.36 and newer can load such a binary, and they say so by defining the
//! symbol version `GLIBC_ABI_DT_RELR`, which the linker then records as a need. So the
//! flag is used only when the build machine's libc.so.6 defines it: building from source
//! works on any distribution, and the binary runs where it was built. Static and cross
//! builds (the Pi binaries) are left alone; a static executable has no such relocations.

use std::process::Command;

/// The version name a DT_RELR-capable glibc defines (2.36+).
const RELR_VERSION: &[u8] = b"GLIBC_ABI_DT_RELR";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let native_glibc = var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("TARGET") == var("HOST")
        && !var("CARGO_CFG_TARGET_FEATURE").split(',').any(|f| f == "crt-static");
    if native_glibc && libc_loads_relr() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the libc.so.6 the C compiler (rustc's linker driver) links against defines
/// `GLIBC_ABI_DT_RELR`. Any doubt (no compiler, no file) means no.
fn libc_loads_relr() -> bool {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let Ok(out) = Command::new(cc).arg("-print-file-name=libc.so.6").output() else { return false };
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    std::fs::read(&path).is_ok_and(|lib| lib.windows(RELR_VERSION.len()).any(|w| w == RELR_VERSION))
}
