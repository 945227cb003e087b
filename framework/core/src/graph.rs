//! The dependency graph: resolved and validated before anything starts.
//!
//! Every problem is collected, not just the first: duplicate names, missing
//! dependencies (who needs what), dependencies on disabled components, and
//! cycles (printed as a path). Nodes are sorted by name, so the graph — and
//! every order derived from it — is the same on every run.
//!
//! Above the model, below the engine: it owns the nodes and their order and
//! implements `ComponentsView` for probes; it names no engine, state or
//! runtime.

use std::any::TypeId;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

use crate::component::Component;
use crate::dependency::Target;
use crate::failure::{OnFailure, Supervision};
use crate::nodeset::NodeSet;
use crate::readiness::Readiness;
use crate::settings::ComponentSettings;
use crate::supervised::{Condition, Supervised};
use crate::view::{Answers, ComponentsView, Dead};

pub use crate::view::GraphFormat;

/// A component's lifecycle settings with the supervision they resolve to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub(crate) settings: ComponentSettings,
    pub(crate) supervision: Supervision,
}

/// A component with its resolved name and lifecycle settings.
///
/// Its state is held in place, not behind a pointer each: the graph's
/// nodes lie side by side, so a walk over hundreds of them reads one
/// stretch of memory instead of three allocations per node.
pub(crate) struct Node {
    pub(crate) name: Arc<str>,
    /// The component, its lifecycle settings and what its failures do,
    /// under one lock (a start reads them together); a reload may replace
    /// the component with one built from new config, or change the policy.
    live: parking_lot::RwLock<(Arc<dyn Component>, Policy)>,
    /// Its condition, run and restart history while the app runs.
    pub(crate) supervised: Supervised,
}

impl Node {
    pub(crate) fn new(
        name: Arc<str>,
        component: Arc<dyn Component>,
        settings: ComponentSettings,
        supervision: Supervision,
    ) -> Self {
        Self {
            name,
            live: parking_lot::RwLock::new((component, Policy { settings, supervision })),
            supervised: Default::default(),
        }
    }

    /// Its lifecycle settings as they are now.
    pub(crate) fn settings(&self) -> ComponentSettings {
        self.live.read().1.settings
    }

    /// What `take` reads of the component and its settings as they are
    /// now, in one read (a start copies only the settings it uses).
    pub(crate) fn read_live<R>(&self, take: impl FnOnce(&Arc<dyn Component>, &ComponentSettings) -> R) -> R {
        let live = self.live.read();
        take(&live.0, &live.1.settings)
    }

    /// What its failures and clean exits do, resolved from code and config.
    pub(crate) fn supervision(&self) -> Supervision {
        self.live.read().1.supervision
    }

    /// Whether it is enabled: part of the app's start, probes and
    /// shutdown. A disabled one stays in the graph, not started, until a
    /// reload enables it.
    pub(crate) fn enabled(&self) -> bool {
        self.live.read().1.settings.enabled
    }

    /// Enables or disables it (a reload, which starts or stops it).
    pub(crate) fn set_enabled(&self, enabled: bool) {
        self.live.write().1.settings.enabled = enabled;
    }

    /// Puts new settings in force (a reload, validated by the caller).
    /// Whether it is enabled stays as it is: only starting or stopping it
    /// changes that ([`set_enabled`](Self::set_enabled)).
    pub(crate) fn set_policy(&self, mut policy: Policy) {
        let mut live = self.live.write();
        policy.settings.enabled = live.1.settings.enabled;
        live.1 = policy;
    }

    /// The component as it is now.
    pub(crate) fn component(&self) -> Arc<dyn Component> {
        self.live.read().0.clone()
    }

    /// Puts `component` (of the same type, built from new config) in its place; returns the old one.
    pub(crate) fn replace(&self, component: Arc<dyn Component>) -> Arc<dyn Component> {
        std::mem::replace(&mut self.live.write().0, component)
    }

    fn type_id(&self) -> TypeId {
        let component = self.component();
        (*component).type_id()
    }
}

/// A component's failure policy and restart type, from config or else its code.
pub(crate) fn supervision_of(component: &dyn Component, settings: &ComponentSettings) -> Result<Supervision, String> {
    let on_failure = settings.on_failure.unwrap_or_else(|| component.on_failure());
    // Ignoring failures is always a choice; shutting down is one only when config says so.
    let explicit = settings.on_failure.is_some() || on_failure == OnFailure::Ignore;
    Supervision::resolve(on_failure, explicit, settings.restart.unwrap_or_else(|| component.restart()))
}

/// One thing wrong with the dependency graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// Two or more components have the same name.
    #[error("{count} components are named `{name}`; names must be unique")]
    Duplicate {
        /// The repeated name.
        name: String,
        /// How many components carry it.
        count: usize,
    },
    /// A component depends on a name no component has.
    #[error("component `{component}` depends on `{dependency}`, but no component has that name")]
    Missing {
        /// The component that declared the dependency.
        component: String,
        /// The name it asked for.
        dependency: String,
    },
    /// A component depends on a type no component has.
    #[error(
        "component `{component}` depends on type `{type_name}`, but no component of that type is registered \
         (if it is registered in another crate, link that crate with `orderly::link!`)"
    )]
    MissingType {
        /// The component that declared the dependency.
        component: String,
        /// The type it asked for.
        type_name: String,
    },
    /// A component depends on a type that several components have.
    #[error(
        "component `{component}` depends on type `{type_name}`, but {} components have that type ({}); \
         use `Dependency::named`",
        candidates.len(),
        candidates.join(", ")
    )]
    AmbiguousType {
        /// The component that declared the dependency.
        component: String,
        /// The type it asked for.
        type_name: String,
        /// The names of the components of that type.
        candidates: Vec<String>,
    },
    /// A component depends on a component that config disabled.
    #[error(
        "component `{component}` depends on `{dependency}`, which is disabled in config \
         (components.{dependency}.enabled = false)"
    )]
    DependsOnDisabled {
        /// The enabled component.
        component: String,
        /// The disabled dependency.
        dependency: String,
    },
    /// The dependencies form a cycle.
    #[error("dependency cycle: {}", path.join(" -> "))]
    Cycle {
        /// The cycle, starting and ending with the same component.
        path: Vec<String>,
    },
    /// A component name collides with a section the runtime owns.
    #[error("component name `{name}` is reserved for the runtime's own config section")]
    ReservedName {
        /// The reserved name.
        name: String,
    },
}

/// Every problem found in the graph, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid component graph:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
pub struct GraphErrors(pub Vec<GraphError>);

/// Config sections the runtime owns; no component may be named like them.
pub const RESERVED_NAMES: [&str; 8] =
    ["log", "shutdown", "start", "supervision", "components", "profile", "lifecycle", "systemd"];

/// The validated graph: nodes sorted by name, edges as indices.
pub(crate) struct Graph {
    pub(crate) nodes: Vec<Node>,
    /// `dependencies[i]`: the nodes `i` needs, sorted, without repeats.
    pub(crate) dependencies: Vec<Vec<usize>>,
    /// `dependents[i]`: the nodes that need `i`, sorted.
    pub(crate) dependents: Vec<Vec<usize>>,
    /// Edges `(i, j)` that `i` declared only as optional: drawn as such.
    pub(crate) optional: BTreeSet<(usize, usize)>,
    /// Disabled components left out of the graph because they could not
    /// run, each with why: what enabling one by a reload is told.
    pub(crate) unavailable: BTreeMap<String, String>,
}

impl Graph {
    /// Resolves every declared dependency and checks the whole graph.
    ///
    /// Nodes whose settings disable them stay in the graph, not started, so
    /// a reload can enable them; one that could not run (its own dependency
    /// missing or ambiguous, in a cycle, a duplicate name) is left out
    /// instead, with why, in `unavailable`: a disabled component's problems
    /// fail nothing until someone enables it.
    pub(crate) fn build(mut nodes: Vec<Node>, disabled: &BTreeSet<String>) -> Result<Graph, GraphErrors> {
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let mut disabled = disabled.clone();
        let mut unavailable = BTreeMap::new();
        loop {
            match resolve(&nodes, &disabled) {
                Ok((dependencies, optional)) => {
                    let mut dependents = vec![Vec::new(); nodes.len()];
                    for (i, deps) in dependencies.iter().enumerate() {
                        for &j in deps {
                            dependents[j].push(i);
                        }
                    }
                    return Ok(Graph { nodes, dependencies, dependents, optional, unavailable });
                }
                Err(problems) => {
                    let (fatal, blamed): (Vec<_>, Vec<_>) =
                        problems.into_iter().partition(|(at, _)| at.iter().all(|&i| nodes[i].enabled()));
                    if !fatal.is_empty() {
                        return Err(GraphErrors(fatal.into_iter().map(|(_, error)| error).collect()));
                    }
                    let mut left_out = BTreeSet::new();
                    for (at, error) in blamed {
                        for i in at.into_iter().filter(|&i| !nodes[i].enabled()) {
                            unavailable.entry(nodes[i].name.to_string()).or_insert_with(|| error.to_string());
                            left_out.insert(i);
                        }
                    }
                    for i in left_out.into_iter().rev() {
                        disabled.insert(nodes.remove(i).name.to_string());
                    }
                }
            }
        }
    }

    /// The number of components.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The index of the node with this name.
    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.binary_search_by(|n| (*n.name).cmp(name)).ok()
    }

    /// Node `i` and every node that depends on it, directly or not.
    pub(crate) fn with_dependents(&self, i: usize) -> NodeSet {
        let mut marked = NodeSet::empty(self.len());
        marked.insert(i);
        let mut todo = vec![i];
        while let Some(j) = todo.pop() {
            // Marked when first seen: each node is pushed once.
            todo.extend(self.dependents[j].iter().filter(|&&d| marked.insert_new(d)));
        }
        marked
    }

    /// Components that may be started again without being prepared for it:
    /// one that restarts but is not restartable, or a dependent of one that
    /// restarts that is not restartable. Each problem names both sides.
    pub(crate) fn restart_problems(&self) -> Vec<String> {
        self.restart_problems_with(|i| self.nodes[i].supervision(), |i| self.nodes[i].enabled())
    }

    /// [`restart_problems`](Self::restart_problems) were each component's
    /// supervision `supervision(i)` and the enabled ones those for which
    /// `enabled(i)` holds: a reload checks its changes before it applies any.
    pub(crate) fn restart_problems_with(
        &self,
        supervision: impl Fn(usize) -> Supervision,
        enabled: impl Fn(usize) -> bool,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, node) in self.nodes.iter().enumerate().filter(|(i, _)| enabled(*i) && supervision(*i).restarts()) {
            if !node.component().restartable() {
                problems.push(format!(
                    "component `{}` is set to restart, but its type cannot start twice (Component::restartable is false)",
                    node.name
                ));
            }
            let closure = self.with_dependents(i);
            for j in closure.iter().filter(|&j| j != i && enabled(j)) {
                if !self.nodes[j].component().restartable() {
                    problems.push(format!(
                        "component `{}` depends on `{}`, which restarts, but it cannot start twice \
                         (Component::restartable is false); make it restartable or keep `{}` from restarting",
                        self.nodes[j].name, node.name, node.name
                    ));
                }
            }
        }
        problems.sort();
        problems.dedup();
        problems
    }

    /// The graph in a drawable text format.
    pub(crate) fn render(&self, format: GraphFormat) -> String {
        let mut out = String::new();
        match format {
            GraphFormat::Mermaid => {
                out.push_str("graph TD\n");
                for node in &self.nodes {
                    let label = if node.enabled() { String::new() } else { " (disabled)".into() };
                    let _ = writeln!(out, "    {}[\"{}{label}\"]", mermaid_id(&node.name), node.name);
                }
                for (i, deps) in self.dependencies.iter().enumerate() {
                    for &j in deps {
                        let arrow = if self.optional.contains(&(i, j)) { "-. optional .->" } else { "-->" };
                        let _ = writeln!(
                            out,
                            "    {} {arrow} {}",
                            mermaid_id(&self.nodes[i].name),
                            mermaid_id(&self.nodes[j].name)
                        );
                    }
                }
            }
            GraphFormat::Dot => {
                out.push_str("digraph components {\n    rankdir=TB;\n");
                for node in &self.nodes {
                    let style = if node.enabled() { "" } else { " [style=dashed, label=\"\\N (disabled)\"]" };
                    let _ = writeln!(out, "    \"{}\"{style};", node.name.escape_default());
                }
                for (i, deps) in self.dependencies.iter().enumerate() {
                    for &j in deps {
                        let style =
                            if self.optional.contains(&(i, j)) { " [style=dashed, label=\"optional\"]" } else { "" };
                        let _ = writeln!(
                            out,
                            "    \"{}\" -> \"{}\"{style};",
                            self.nodes[i].name.escape_default(),
                            self.nodes[j].name.escape_default()
                        );
                    }
                }
                out.push_str("}\n");
            }
        }
        out
    }
}

/// Probes and the lifecycle view reach the components through this.
impl ComponentsView for Graph {
    fn readiness(&self, per_component: Duration) -> Answers<'_> {
        // A disabled component, or one a reload is enabling, is not part of the app (yet).
        let asked = self.nodes.iter().filter(|node| node.enabled());
        let answers = join_all(asked.map(move |node| async move {
            let condition = node.supervised.condition.lock().clone();
            if condition == Some(Condition::Enabling) {
                return None;
            }
            // A component being restarted is not asked: it may be stopped.
            if let Some(Condition::Restarting(reason)) = condition {
                return Some((node.name.to_string(), Readiness::NotReady(reason.to_string())));
            }
            let readiness = tokio::time::timeout(per_component, node.component().ready())
                .await
                .unwrap_or_else(|_| Readiness::NotReady(format!("ready() did not answer within {per_component:?}")));
            // An ignored failure leaves the component degraded, unless it is not ready at all.
            let readiness = match (readiness, condition) {
                (Readiness::NotReady(reason), _) => Readiness::NotReady(reason),
                (_, Some(Condition::Degraded(failure))) => Readiness::Degraded(failure),
                (readiness, _) => readiness,
            };
            Some((node.name.to_string(), readiness))
        }));
        Box::pin(async move { answers.await.into_iter().flatten().collect() })
    }

    fn dead(&self, per_component: Duration) -> Dead<'_> {
        Box::pin(async move {
            let answers = join_all(self.nodes.iter().filter(|node| node.enabled()).map(move |node| async move {
                // A component being restarted may be stopped, one being enabled not started: alive.
                if matches!(*node.supervised.condition.lock(), Some(Condition::Restarting(_) | Condition::Enabling)) {
                    return None;
                }
                let why = match tokio::time::timeout(per_component, node.component().live()).await {
                    Ok(Ok(())) => return None,
                    Ok(Err(error)) => crate::error::box_error_chain(&error),
                    Err(_) => format!("live() did not answer within {per_component:?}"),
                };
                Some((node.name.to_string(), why))
            }))
            .await;
            answers.into_iter().flatten().collect()
        })
    }

    fn render(&self, format: GraphFormat) -> String {
        Graph::render(self, format)
    }
}

/// Each problem of the graph, with the nodes it is the fault of (empty:
/// nobody's in particular, always fatal).
type Problems = Vec<(Vec<usize>, GraphError)>;

/// Each node's dependencies, and the edges declared only as optional.
type Edges = (Vec<Vec<usize>>, BTreeSet<(usize, usize)>);

/// Resolves every declared dependency of `nodes` (sorted by name): each
/// node's dependencies, sorted, and the edges declared only as optional.
/// A type is resolved among the enabled nodes first, so a disabled one of
/// the same type makes no ambiguity.
fn resolve(nodes: &[Node], disabled: &BTreeSet<String>) -> Result<Edges, Problems> {
    let mut errors: Problems = Vec::new();
    let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
    let mut counts: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut by_type: HashMap<TypeId, Vec<usize>> = HashMap::new();
    for (i, node) in nodes.iter().enumerate() {
        by_name.entry(&node.name).or_insert(i);
        counts.entry(&node.name).or_default().push(i);
        by_type.entry(node.type_id()).or_default().push(i);
        if RESERVED_NAMES.contains(&&*node.name) {
            errors.push((vec![], GraphError::ReservedName { name: node.name.to_string() }));
        }
    }
    for (name, at) in counts.into_iter().filter(|(_, at)| at.len() > 1) {
        let count = at.len();
        // Of an enabled and a disabled one, the disabled one is left out.
        let disabled_ones: Vec<usize> = at.iter().copied().filter(|&i| !nodes[i].enabled()).collect();
        let at = if at.len() - disabled_ones.len() <= 1 { disabled_ones } else { vec![] };
        errors.push((at, GraphError::Duplicate { name: name.to_string(), count }));
    }

    let mut dependencies = vec![Vec::new(); nodes.len()];
    let (mut optional, mut required) = (BTreeSet::new(), BTreeSet::new());
    for (i, node) in nodes.iter().enumerate() {
        let enabled = node.enabled();
        for dep in node.component().dependencies() {
            let component = node.name.to_string();
            let on_disabled = |dependency: &str| GraphError::DependsOnDisabled {
                component: component.clone(),
                dependency: dependency.to_string(),
            };
            let resolved = match &dep.target {
                Target::Name(name) => match by_name.get(name.as_str()) {
                    Some(&j) if enabled && !dep.optional && !nodes[j].enabled() => {
                        errors.push((vec![i], on_disabled(name)));
                        None
                    }
                    Some(&j) => Some(j),
                    None if dep.optional => None,
                    None if disabled.contains(name) => {
                        errors.push((vec![i], on_disabled(name)));
                        None
                    }
                    None => {
                        errors.push((vec![i], GraphError::Missing { component, dependency: name.clone() }));
                        None
                    }
                },
                Target::Type { id, type_name, default_name } => {
                    let all = by_type.get(id).map(Vec::as_slice).unwrap_or_default();
                    let enabled_ones: Vec<usize> = all.iter().copied().filter(|&j| nodes[j].enabled()).collect();
                    let candidates = if enabled_ones.is_empty() { all } else { &enabled_ones };
                    match candidates {
                        [j] if enabled && !dep.optional && !nodes[*j].enabled() => {
                            errors.push((vec![i], on_disabled(&nodes[*j].name)));
                            None
                        }
                        [j] => Some(*j),
                        [] if dep.optional => None,
                        [] if disabled.contains(*default_name) => {
                            errors.push((vec![i], on_disabled(default_name)));
                            None
                        }
                        [] => {
                            let error = GraphError::MissingType { component, type_name: type_name.to_string() };
                            errors.push((vec![i], error));
                            None
                        }
                        many => {
                            let candidates = many.iter().map(|&j| nodes[j].name.to_string()).collect();
                            let error =
                                GraphError::AmbiguousType { component, type_name: type_name.to_string(), candidates };
                            errors.push((vec![i], error));
                            None
                        }
                    }
                }
            };
            if let Some(j) = resolved {
                dependencies[i].push(j);
                if dep.optional { &mut optional } else { &mut required }.insert((i, j));
            }
        }
        dependencies[i].sort_unstable();
        dependencies[i].dedup();
    }

    for path in find_cycles(&dependencies) {
        // A cycle through a disabled node leaves it out: the rest can run.
        let mut at: Vec<usize> = path.iter().copied().filter(|&i| !nodes[i].enabled()).collect();
        at.dedup();
        let path = path.iter().map(|&i| nodes[i].name.to_string()).collect();
        errors.push((at, GraphError::Cycle { path }));
    }

    if errors.is_empty() {
        // Declared both ways, an edge is required.
        Ok((dependencies, optional.difference(&required).copied().collect()))
    } else {
        Err(errors)
    }
}

fn mermaid_id(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// Returns one cycle path (first node repeated at the end) for each group of
/// nodes that cannot be ordered. Empty when the graph is acyclic.
fn find_cycles(dependencies: &[Vec<usize>]) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::New; dependencies.len()];
    let mut cycles = Vec::new();
    for root in 0..dependencies.len() {
        if marks[root] != Mark::New {
            continue;
        }
        // Iterative DFS: (node, index of the next edge to follow).
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        marks[root] = Mark::OnPath;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&dep) = dependencies[node].get(*next) {
                *next += 1;
                match marks[dep] {
                    Mark::New => {
                        marks[dep] = Mark::OnPath;
                        stack.push((dep, 0));
                    }
                    Mark::OnPath => {
                        let start = stack.iter().position(|&(n, _)| n == dep).unwrap_or(0);
                        let mut path: Vec<usize> = stack[start..].iter().map(|&(n, _)| n).collect();
                        path.push(dep);
                        cycles.push(path);
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dependency::Dependency;

    /// A component that only declares dependencies by name: all these
    /// tests need (the testing crate's `Probe` sits above this crate).
    struct Named(Vec<String>);

    #[async_trait::async_trait]
    impl Component for Named {
        fn dependencies(&self) -> Vec<Dependency> {
            self.0.iter().map(Dependency::named).collect()
        }
    }

    fn node(name: &str, deps: &[&str]) -> Node {
        Node::new(
            name.into(),
            Arc::new(Named(deps.iter().map(|d| d.to_string()).collect())),
            ComponentSettings::default(),
            Supervision::Shutdown,
        )
    }

    fn errors(nodes: Vec<Node>) -> Vec<GraphError> {
        match Graph::build(nodes, &BTreeSet::new()) {
            Ok(_) => Vec::new(),
            Err(GraphErrors(errors)) => errors,
        }
    }

    #[test]
    fn reports_a_cycle_as_a_path() {
        let found = errors(vec![node("a", &["b"]), node("b", &["c"]), node("c", &["a"]), node("d", &[])]);
        assert_eq!(found, vec![GraphError::Cycle { path: vec!["a".into(), "b".into(), "c".into(), "a".into()] }]);
        assert_eq!(found[0].to_string(), "dependency cycle: a -> b -> c -> a");
    }

    #[test]
    fn reports_a_self_dependency_as_a_cycle() {
        let found = errors(vec![node("a", &["a"])]);
        assert_eq!(found, vec![GraphError::Cycle { path: vec!["a".into(), "a".into()] }]);
    }

    #[test]
    fn names_who_needs_what_when_a_dependency_is_missing() {
        let found = errors(vec![node("api", &["database"])]);
        assert_eq!(found[0].to_string(), "component `api` depends on `database`, but no component has that name");
    }

    #[test]
    fn reports_every_problem_at_once() {
        let found = errors(vec![node("a", &["zzz"]), node("a", &[]), node("log", &[])]);
        assert_eq!(found.len(), 3, "{found:?}");
    }

    #[test]
    fn a_dependency_on_a_disabled_component_is_an_error() {
        let disabled: BTreeSet<String> = ["cache".to_string()].into();
        let Err(GraphErrors(found)) = Graph::build(vec![node("api", &["cache"])], &disabled) else {
            panic!("expected an error");
        };
        assert!(matches!(&found[0], GraphError::DependsOnDisabled { dependency, .. } if dependency == "cache"));
    }

    /// Depends on `cache` if the graph has it.
    struct MaybeCached;
    #[async_trait::async_trait]
    impl Component for MaybeCached {
        fn name(&self) -> &str {
            "api"
        }
        fn dependencies(&self) -> Vec<crate::dependency::Dependency> {
            vec![crate::dependency::Dependency::named("cache").optional()]
        }
    }

    fn maybe_cached() -> Node {
        Node::new("api".into(), Arc::new(MaybeCached), ComponentSettings::default(), Supervision::Shutdown)
    }

    #[test]
    fn an_optional_dependency_is_an_edge_when_present_and_nothing_when_absent() {
        let graph = Graph::build(vec![maybe_cached(), node("cache", &[])], &BTreeSet::new()).unwrap();
        assert_eq!(graph.dependencies[0], vec![1], "api waits for cache");
        let graph = Graph::build(vec![maybe_cached()], &BTreeSet::new()).unwrap();
        assert!(graph.dependencies[0].is_empty());
        let disabled: BTreeSet<String> = ["cache".to_string()].into();
        let graph = Graph::build(vec![maybe_cached()], &disabled).unwrap();
        assert!(graph.dependencies[0].is_empty(), "disabled counts as absent");
        assert_eq!(format!("{:?}", MaybeCached.dependencies()[0]), r#"Dependency::named("cache").optional()"#);
    }

    fn disabled(name: &str, deps: &[&str]) -> Node {
        let node = node(name, deps);
        node.set_enabled(false);
        node
    }

    #[test]
    fn a_disabled_component_stays_in_the_graph_unless_it_could_not_run() {
        let graph = Graph::build(
            vec![
                node("api", &[]),
                disabled("audit", &["api"]),
                disabled("orphan", &["gone"]),
                disabled("loop", &["loop"]),
            ],
            &BTreeSet::new(),
        )
        .unwrap();
        let names: Vec<&str> = graph.nodes.iter().map(|n| &*n.name).collect();
        assert_eq!(names, ["api", "audit"], "what could not run is left out");
        assert_eq!(graph.dependencies[1], vec![0], "a disabled component's edges are resolved");
        assert!(graph.unavailable["orphan"].contains("depends on `gone`"), "{:?}", graph.unavailable);
        assert!(graph.unavailable["loop"].contains("dependency cycle"), "{:?}", graph.unavailable);
        assert!(graph.render(GraphFormat::Mermaid).contains("audit[\"audit (disabled)\"]"));
    }

    #[test]
    fn an_enabled_component_requiring_a_disabled_one_is_an_error_but_an_optional_edge_is_kept() {
        let found = errors(vec![node("api", &["cache"]), disabled("cache", &[])]);
        assert_eq!(found, vec![GraphError::DependsOnDisabled { component: "api".into(), dependency: "cache".into() }]);
        let cache = disabled("cache", &[]);
        let graph = Graph::build(vec![maybe_cached(), cache], &BTreeSet::new()).unwrap();
        assert_eq!(graph.dependencies[0], vec![1], "api takes cache once a reload enables it");
        assert!(graph.optional.contains(&(0, 1)));
    }

    #[test]
    fn renders_mermaid_and_dot_with_edges_to_dependencies() {
        let graph = Graph::build(vec![node("api", &["db"]), node("db", &[])], &BTreeSet::new()).unwrap();
        assert!(graph.render(GraphFormat::Mermaid).contains("api --> db"));
        assert!(graph.render(GraphFormat::Dot).contains("\"api\" -> \"db\";"));
    }

    #[test]
    fn an_optional_edge_is_drawn_as_optional() {
        let graph = Graph::build(vec![maybe_cached(), node("cache", &[])], &BTreeSet::new()).unwrap();
        assert!(
            graph.render(GraphFormat::Mermaid).contains("api -. optional .-> cache"),
            "{}",
            graph.render(GraphFormat::Mermaid)
        );
        assert!(graph.render(GraphFormat::Dot).contains("\"api\" -> \"cache\" [style=dashed, label=\"optional\"];"));
    }
}
