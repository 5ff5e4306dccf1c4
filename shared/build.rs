//! With the `enrich` feature: writes mailchecker's disposable-domain list to
//! `$OUT_DIR/disposable_domains.txt`, one domain a line, for `enrich::verify::lists` to
//! embed as one string. The crate's own `&[&str]` of some 55,000 domains costs a pointer
//! and a relocation per entry (about 2 MiB of an arm64 bootstrap); the text is 0.6 MiB.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(feature = "enrich")]
    {
        let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
        let list = mailchecker::blacklist().join("\n");
        std::fs::write(out.join("disposable_domains.txt"), list).expect("write the disposable-domain list");
    }
}
