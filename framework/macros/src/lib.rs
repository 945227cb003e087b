//! `#[orderly::component]`: use it on `impl Component for T` instead of
//! `#[async_trait]`. It applies `async_trait` and generates
//! `joined_phases()` from the stop hooks the impl actually defines, so the
//! runtime skips the phases a component does not join without calling them,
//! and `checks_readiness()`, so a start does not poll a default `ready`.

use proc_macro::TokenStream;
use proc_macro_crate::{crate_name, FoundCrate};
use quote::quote;
use syn::{parse_macro_input, ImplItem, ItemImpl};

/// The stop hooks, in phase order, and the `StopPhase` variant of each.
const HOOKS: [(&str, &str); 5] = [
    ("stop_accepting", "StopAccepting"),
    ("drain", "Drain"),
    ("stop_workers", "StopWorkers"),
    ("flush", "Flush"),
    ("close", "Close"),
];

/// Implements `Component` with `async_trait`, plus a `joined_phases()` that
/// lists exactly the stop hooks this impl overrides and a
/// `checks_readiness()` that says whether it defines `ready`.
///
/// ```ignore
/// #[orderly::component]
/// impl Component for Pool {
///     async fn close(&self, _ctx: &StopContext) -> Result<(), BoxError> { Ok(()) }
/// }
/// // joined_phases() == PhaseSet::of(&[StopPhase::Close])
/// ```
#[proc_macro_attribute]
pub fn component(args: TokenStream, input: TokenStream) -> TokenStream {
    if !args.is_empty() {
        let message = "#[orderly::component] takes no arguments";
        return syn::Error::new(proc_macro2::Span::call_site(), message).to_compile_error().into();
    }
    let mut item = parse_macro_input!(input as ItemImpl);
    let defined: Vec<String> = item
        .items
        .iter()
        .filter_map(|i| match i {
            ImplItem::Fn(f) => Some(f.sig.ident.to_string()),
            _ => None,
        })
        .collect();
    let root = framework_path();
    if !defined.iter().any(|name| name == "joined_phases") {
        let phases = HOOKS.iter().filter(|(hook, _)| defined.iter().any(|d| d == hook)).map(|(_, variant)| {
            let variant = syn::Ident::new(variant, proc_macro2::Span::call_site());
            quote! { #root::StopPhase::#variant }
        });
        let method: ImplItem = syn::parse_quote! {
            fn joined_phases(&self) -> #root::phase::PhaseSet {
                #root::phase::PhaseSet::of(&[#(#phases),*])
            }
        };
        item.items.push(method);
    }
    if !defined.iter().any(|name| name == "checks_readiness") {
        let checks = defined.iter().any(|name| name == "ready");
        let method: ImplItem = syn::parse_quote! {
            fn checks_readiness(&self) -> bool {
                #checks
            }
        };
        item.items.push(method);
    }
    quote! {
        #[#root::async_trait]
        #item
    }
    .into()
}

/// The path the generated code names the framework by: `orderly` where the
/// calling crate depends on it (under whatever name it gave it), else
/// `orderly-core` (a crate that only writes components). Both crates name
/// themselves with `extern crate self`, so their own code resolves too.
fn framework_path() -> proc_macro2::TokenStream {
    let found = crate_name("orderly").or_else(|_| crate_name("orderly-core"));
    let name = match found {
        Ok(FoundCrate::Name(name)) => name,
        // Inside `orderly` or `orderly-core` itself (its lib, tests, doctests).
        // Its library has `extern crate self as <its name>`; its tests and
        // doctests link the library under that name.
        Ok(FoundCrate::Itself) => {
            std::env::var("CARGO_PKG_NAME").map_or_else(|_| "orderly".into(), |name| name.replace('-', "_"))
        }
        // No manifest to read: the common case is the best guess, and the
        // compiler then names the missing crate.
        Err(_) => "orderly".into(),
    };
    let ident = syn::Ident::new(&name, proc_macro2::Span::call_site());
    quote! { ::#ident }
}
