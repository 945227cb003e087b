//! `orderly::link!` keeps another crate's registrations in the binary.
//! `unlinked.rs` is the control: the same dependency, unnamed, is dropped.

#[test]
fn registrations_from_a_linked_crate_are_present() {
    let linked = orderly::link![fixture_components];
    let found: Vec<(&str, &str)> = orderly::app::Registration::all().map(|r| (r.crate_name(), r.section())).collect();
    assert!(found.contains(&("fixture_components", "fixture_clock")), "{found:?}");
    assert!(linked.silent_crates().is_empty());
}
