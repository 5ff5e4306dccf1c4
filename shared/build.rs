//! Writes the disposable-domain list (mailchecker's and the vendored
//! `src/enrich/verify/data/disposable_domains.txt`, together) and the free-mail list
//! (`src/enrich/verify/data/free_mail_domains.txt`), one domain a line, zlib-compressed, to
//! `$OUT_DIR`, for `enrich::verify::lists` to embed and inflate once. mailchecker's own
//! `&[&str]` of some 56,000 domains costs a pointer and a relocation per entry (about 2 MiB
//! of an arm64 bootstrap); as text the two lists are 1.06 MB, and compressed about 0.4 MB.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    const FREE_MAIL: &str = "src/enrich/verify/data/free_mail_domains.txt";
    const DISPOSABLE: &str = "src/enrich/verify/data/disposable_domains.txt";
    println!("cargo::rerun-if-changed={FREE_MAIL}");
    println!("cargo::rerun-if-changed={DISPOSABLE}");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let write = |name: &str, text: &str| {
        let packed = miniz_oxide::deflate::compress_to_vec_zlib(text.as_bytes(), 10);
        std::fs::write(out.join(name), packed).unwrap_or_else(|e| panic!("write {name}: {e}"));
    };
    let vendored = std::fs::read_to_string(DISPOSABLE).expect("read the disposable-domain list");
    let mut disposable: Vec<&str> = mailchecker::blacklist()
        .into_iter()
        .chain(vendored.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')))
        .collect();
    disposable.sort_unstable();
    disposable.dedup();
    write("disposable_domains.txt.z", &disposable.join("\n"));
    let free_mail = std::fs::read_to_string(FREE_MAIL).expect("read the free-mail list");
    write("free_mail_domains.txt.z", &free_mail);
}
