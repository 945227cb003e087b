//! The control for `linking.rs`: this test binary depends on
//! `fixture_components` but never names it, and the linker drops its
//! registrations. This is the pitfall `orderly::link!` exists for; if this
//! test ever fails, the toolchain changed and `link!` may be unnecessary.

#[test]
fn registrations_from_an_unnamed_crate_are_dropped_by_the_linker() {
    let crates: Vec<&str> = orderly::app::Registration::all().map(|r| r.crate_name()).collect();
    assert!(!crates.contains(&"fixture_components"), "{crates:?}");
}

#[test]
fn a_named_crate_without_registrations_is_reported() {
    let linked = orderly::link![serde_json];
    assert_eq!(linked.silent_crates(), vec!["serde_json"]);
}
