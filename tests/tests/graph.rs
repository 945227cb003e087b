//! Graph errors stop everything before any component starts.

use orderly::{graph::GraphError, runtime::BuildError, settings::RuntimeSettings, Runtime};
use orderly_testing::{Journal, Probe, Step};

fn build(probes: Vec<Probe>) -> Result<Runtime, BuildError> {
    probes.into_iter().fold(Runtime::builder(), |b, p| b.component(p)).build()
}

fn graph_errors(result: Result<Runtime, BuildError>) -> Vec<GraphError> {
    match result {
        Err(BuildError::Graph(errors)) => errors.0,
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("the graph should be invalid"),
    }
}

#[test]
fn a_missing_dependency_names_who_needs_what() {
    let errors = graph_errors(build(vec![Probe::new("api").depends_on(&["db"])]));
    assert_eq!(errors, vec![GraphError::Missing { component: "api".into(), dependency: "db".into() }]);
}

#[test]
fn a_cycle_is_printed_as_its_path() {
    let errors = graph_errors(build(vec![
        Probe::new("api").depends_on(&["cache"]),
        Probe::new("cache").depends_on(&["db"]),
        Probe::new("db").depends_on(&["api"]),
    ]));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].to_string(), "dependency cycle: api -> cache -> db -> api");
}

#[test]
fn duplicate_names_are_rejected() {
    let errors = graph_errors(build(vec![Probe::new("db"), Probe::new("db")]));
    assert_eq!(errors, vec![GraphError::Duplicate { name: "db".into(), count: 2 }]);
}

#[test]
fn nothing_starts_when_the_graph_is_invalid() {
    let journal = Journal::new();
    let result =
        build(vec![Probe::new("ok").journal(&journal), Probe::new("bad").depends_on(&["nope"]).journal(&journal)]);
    assert!(result.is_err());
    assert!(!journal.did("ok", Step::Start));
}

#[test]
fn a_dependency_on_a_component_disabled_in_config_is_an_error() {
    let config = orderly::config::ConfigSources::new("APP")
        .embedded_defaults("[components.cache]\nenabled = false\n")
        .load()
        .unwrap();
    let settings: RuntimeSettings = config.runtime_settings(&["api", "cache"]).unwrap();
    let result = Runtime::builder()
        .component(Probe::new("api").depends_on(&["cache"]))
        .component(Probe::new("cache"))
        .settings(settings)
        .build();
    let errors = graph_errors(result);
    assert_eq!(errors, vec![GraphError::DependsOnDisabled { component: "api".into(), dependency: "cache".into() }]);
    assert!(errors[0].to_string().contains("components.cache.enabled = false"));
}

#[test]
fn the_graph_renders_as_mermaid_and_dot() {
    let runtime = build(vec![Probe::new("api").depends_on(&["db"]), Probe::new("db")]).unwrap();
    assert_eq!(
        runtime.render_graph(orderly::graph::GraphFormat::Mermaid),
        "graph TD\n    api[\"api\"]\n    db[\"db\"]\n    api --> db\n"
    );
    assert!(runtime.render_graph(orderly::graph::GraphFormat::Dot).starts_with("digraph components {"));
}
