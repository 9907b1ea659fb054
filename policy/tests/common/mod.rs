//! Loading the real policy files, as the ledger will: read with std::fs, parse
//! with the crate (which does no I/O itself).

#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;

use fundledger_policy::catalog::CatalogTexts;
use fundledger_policy::Policy;

pub fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

/// The catalog files, keyed as policies reference them: `catalogs/<name>`.
pub fn catalog_texts() -> CatalogTexts {
    let mut texts = CatalogTexts::new();
    for entry in fs::read_dir(policies_dir().join("catalogs")).expect("policies/catalogs exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            texts.insert(format!("catalogs/{name}"), fs::read_to_string(&path).unwrap());
        }
    }
    texts
}

/// Every `policies/*.toml` file: (file stem, text).
pub fn policy_files() -> Vec<(String, String)> {
    let mut files: Vec<_> = fs::read_dir(policies_dir())
        .expect("policies/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
            (stem, fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

pub fn load_all() -> Vec<Policy> {
    let catalogs = catalog_texts();
    policy_files()
        .into_iter()
        .map(|(name, text)| {
            Policy::from_toml_with_catalogs(&text, &catalogs)
                .unwrap_or_else(|e| panic!("policies/{name}.toml: {e}"))
        })
        .collect()
}
