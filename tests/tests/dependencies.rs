//! Typed access to declared dependencies and the resources they provide;
//! asking for anything undeclared is an error naming both sides.

use std::sync::Arc;

use orderly::{
    async_trait, graph::GraphError, runtime::StartError, AccessError, BoxError, Component, Dependency, Runtime,
    StartContext,
};
use orderly_testing::{TestApp, TestStartError};
use pool::Pool;

/// A resource type, as a connection pool would be.
mod pool {
    #[derive(Debug, PartialEq)]
    pub struct Pool {
        pub size: usize,
    }
}

struct Database;

#[async_trait]
impl Component for Database {
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        ctx.provide(Arc::new(Pool { size: 8 }));
        Ok(())
    }
}

struct Api {
    declared: bool,
}

#[async_trait]
impl Component for Api {
    fn dependencies(&self) -> Vec<Dependency> {
        if self.declared {
            vec![Dependency::on::<Database>()]
        } else {
            Vec::new()
        }
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let _db: Arc<Database> = ctx.dependency::<Database>()?;
        let pool: Arc<Pool> = ctx.resource::<Pool>()?;
        assert_eq!(pool.size, 8);
        Ok(())
    }
}

#[tokio::test]
async fn a_component_gets_its_declared_dependency_and_its_resources_typed() {
    let app = TestApp::builder().component(Database).component(Api { declared: true }).start().await.unwrap();
    assert!(app.shutdown().await.is_clean());
}

#[tokio::test]
async fn asking_for_an_undeclared_dependency_names_both_sides() {
    let result = TestApp::builder().component(Database).component(Api { declared: false }).start().await;
    let Err(TestStartError::Start(outcome, _)) = result else { panic!("start should fail") };
    let StartError::Failed { failure, .. } = *outcome else { panic!() };
    assert_eq!(failure.component, "api");
    let expected = AccessError::NotDeclared {
        component: "api".into(),
        requested: std::any::type_name::<Database>(),
        provider: "database".into(),
    };
    assert_eq!(failure.error, expected.to_string());
}

struct Orphan;

#[async_trait]
impl Component for Orphan {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Database>()]
    }
}

#[test]
fn a_dependency_on_an_unregistered_type_is_caught_before_start() {
    let Err(orderly::runtime::BuildError::Graph(errors)) = Runtime::builder().component(Orphan).build() else {
        panic!("must not build")
    };
    assert!(matches!(&errors.0[0], GraphError::MissingType { component, .. } if component == "orphan"));
    assert!(errors.to_string().contains("orderly::link!"), "the message points at the linker fix: {errors}");
}

#[test]
fn a_dependency_on_a_type_with_two_instances_is_ambiguous() {
    let result = Runtime::builder()
        .component_named("primary", Arc::new(Database), None)
        .component_named("replica", Arc::new(Database), None)
        .component(Orphan)
        .build();
    let Err(orderly::runtime::BuildError::Graph(errors)) = result else { panic!("must not build") };
    assert!(
        matches!(&errors.0[0], GraphError::AmbiguousType { candidates, .. } if candidates == &["primary".to_string(), "replica".to_string()])
    );
}
