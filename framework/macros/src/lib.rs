//! `#[orderly::component]`: use it on `impl Component for T` instead of
//! `#[async_trait]`. It applies `async_trait` and generates
//! `joined_phases()` from the stop hooks the impl actually defines, so the
//! runtime skips the phases a component does not join without calling them,
//! and `checks_readiness()`, so a start does not poll a default `ready`.

use proc_macro::TokenStream;
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
    if !defined.iter().any(|name| name == "joined_phases") {
        let phases = HOOKS.iter().filter(|(hook, _)| defined.iter().any(|d| d == hook)).map(|(_, variant)| {
            let variant = syn::Ident::new(variant, proc_macro2::Span::call_site());
            quote! { ::orderly::StopPhase::#variant }
        });
        let method: ImplItem = syn::parse_quote! {
            fn joined_phases(&self) -> ::orderly::PhaseSet {
                ::orderly::PhaseSet::of(&[#(#phases),*])
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
        #[::orderly::async_trait]
        #item
    }
    .into()
}
