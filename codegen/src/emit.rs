//! Turns a validated [`Spec`] into Rust tokens.
//!
//! The generated code is `include!`d into the `bitrix24` crate (or into a user's crate). It
//! refers to the hand-written runtime only through one alias, `rt` (`crate::__private` inside
//! `bitrix24`, `::bitrix24::__private` elsewhere), and to its own items through relative
//! paths (`super::types::X`), so the same output works at any module depth.
//!
//! What one method costs is kept small on purpose (see `codegen/DESIGN.md`): a request is a
//! struct holding `bitrix24::Params` with a generic constructor and setters (type-checked,
//! but compiled only where a program uses them), one `Method` impl with a `const`
//! `MethodMeta`, and one `IntoFuture` impl whose future type is shared by all methods. No serde derives: results decode through small hand-rolled `FromWire`
//! impls, requests encode their parameters when they are set.

use std::collections::{BTreeMap, BTreeSet};

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::naming::{self, RustName};
use crate::spec::{Access, Api, BoolForm, Field, MethodDef, Spec, Ty, TypeDef, TypeKind};

/// How and what to generate.
#[derive(Clone, Debug)]
pub struct Options {
    /// The path of the `bitrix24` crate in the generated code: `crate` when the output is
    /// included into `bitrix24` itself, `::bitrix24` (the default) in other crates.
    pub runtime: String,
    /// Generate only these groups (`None`: all). Types are generated when a generated method
    /// or an event uses them.
    pub groups: Option<BTreeSet<String>>,
    /// Inside `bitrix24`: group accessors are inherent methods of `Client`, and group
    /// modules carry the `doc(cfg(feature = ..))` badge. Elsewhere the accessors are methods
    /// of an extension trait named by [`accessor_trait`](Self::accessor_trait).
    pub inside_runtime: bool,
    /// The name of the extension trait with the group accessors (outside `bitrix24`).
    pub accessor_trait: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            runtime: "::bitrix24".into(),
            groups: None,
            inside_runtime: false,
            accessor_trait: "SpecMethods".into(),
        }
    }
}

impl Options {
    /// The options the `bitrix24` crate's own `build.rs` uses.
    pub fn for_runtime(groups: Option<BTreeSet<String>>) -> Self {
        Options {
            runtime: "crate".into(),
            groups,
            inside_runtime: true,
            accessor_trait: String::new(),
        }
    }

    fn enabled(&self, group: &str) -> bool {
        self.groups.as_ref().is_none_or(|g| g.contains(group))
    }

    fn rt(&self) -> TokenStream {
        let path: syn::Path = syn::parse_str(&format!("{}::__private", self.runtime))
            .unwrap_or_else(|_| syn::parse_quote!(::bitrix24::__private));
        quote!(#path)
    }
}

/// Where a named type is used: that decides what is generated for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Read from answers (results, events).
    pub output: bool,
    /// Written in requests (params).
    pub input: bool,
}

/// Which named types the enabled methods and the events use, and how.
pub fn usage(spec: &Spec, opts: &Options) -> BTreeMap<String, Usage> {
    let mut out: BTreeMap<String, Usage> = BTreeMap::new();
    let mut stack: Vec<(String, bool)> = Vec::new();
    let push = |ty: &Ty, output: bool, stack: &mut Vec<(String, bool)>| {
        let mut names = Vec::new();
        ty.named(&mut names);
        stack.extend(names.into_iter().map(|n| (n, output)));
    };
    for m in spec.methods.iter().filter(|m| opts.enabled(&m.group)) {
        push(&m.result, true, &mut stack);
        for p in &m.params {
            push(&p.ty, false, &mut stack);
        }
    }
    for e in &spec.events {
        stack.push((e.data.clone(), true));
    }
    while let Some((name, output)) = stack.pop() {
        let u = out.entry(name.clone()).or_default();
        let seen = if output { u.output } else { u.input };
        if seen {
            continue;
        }
        if output {
            u.output = true;
        } else {
            u.input = true;
        }
        if let Some(TypeDef {
            kind: TypeKind::Struct(fields),
            ..
        }) = spec.type_def(&name)
        {
            for f in fields {
                push(&f.ty, output, &mut stack);
            }
        }
    }
    out
}

/// Emits the whole generated file.
pub fn emit(spec: &Spec, opts: &Options) -> TokenStream {
    let rt = opts.rt();
    let usage = usage(spec, opts);
    let types = spec
        .types
        .iter()
        .filter_map(|t| usage.get(&t.name).map(|u| emit_type(t, *u)));
    let mut modules = Vec::new();
    let mut accessors = Vec::new();
    for (group, module) in spec.groups() {
        if !opts.enabled(group) {
            if opts.inside_runtime {
                // A disabled group is declared but configured out, so that using it makes
                // rustc say which feature to turn on.
                let module_ident = module.ident();
                modules.push(quote! {
                    #[cfg(feature = #group)]
                    pub mod #module_ident {}
                });
            }
            continue;
        }
        let methods: Vec<&MethodDef> = spec.methods.iter().filter(|m| m.group == group).collect();
        let (module_tokens, accessor) = emit_group(group, module, &methods, opts);
        modules.push(module_tokens);
        accessors.push(accessor);
    }
    let events = emit_events(spec, &rt);
    let access = if opts.inside_runtime {
        quote! {
            impl crate::Client {
                #(#accessors)*
            }
        }
    } else {
        let name = format_ident!("{}", opts.accessor_trait);
        let doc = doc_lines(&format!(
            "The method groups of this spec on a [`Client`]({}::Client): bring it into scope \
             (`use ...::{};`) and call `client.<group>().<method>(..)`.",
            opts.runtime, opts.accessor_trait
        ));
        let sigs = accessors.iter().map(|a| a.sig.clone());
        let impls = accessors.iter().map(|a| a.body.clone());
        quote! {
            #doc
            pub trait #name {
                #(#sigs;)*
            }

            impl #name for #rt::Client {
                #(#impls)*
            }
        }
    };
    let types_doc = doc_lines(
        "Named types shared by methods: request parameter structures (builders) and result \
         shapes.",
    );
    quote! {
        #types_doc
        #[allow(clippy::should_implement_trait, clippy::wrong_self_convention, clippy::too_many_arguments, clippy::new_without_default, clippy::useless_conversion, unused_imports)]
        pub mod types {
            use #rt as rt;

            #(#types)*
        }

        #(#modules)*

        #events

        #access
    }
}

/// A group accessor: the signature (for a trait) and the whole method.
struct Accessor {
    sig: TokenStream,
    body: TokenStream,
}

impl quote::ToTokens for Accessor {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend(self.body.clone());
    }
}

fn emit_group(
    group: &str,
    module: &RustName,
    methods: &[&MethodDef],
    opts: &Options,
) -> (TokenStream, Accessor) {
    let rt = opts.rt();
    let module_ident = module.ident();
    let group_ty = format_ident!(
        "{}Methods",
        naming::pascal(group).map(|p| p.text).unwrap_or_default()
    );
    let items = methods.iter().map(|m| emit_method(m, &group_ty));
    let group_fns = methods.iter().map(|m| emit_group_fn(m));
    let deprecated_count = methods.iter().filter(|m| m.deprecated.is_some()).count();
    let mut module_doc = format!(
        "Methods of group `{group}` ({} methods{}): a request type per method and \
         [`{group_ty}`]({}::{group_ty}), the group bound to a client (`client.{}()`).",
        methods.len(),
        if deprecated_count > 0 {
            format!(", {deprecated_count} deprecated by Bitrix24")
        } else {
            String::new()
        },
        module.text,
        module.text,
    );
    if opts.inside_runtime {
        module_doc.push_str(&format!("\n\nCargo feature `{group}`."));
    }
    let module_doc = doc_lines(&module_doc);
    let cfg = if opts.inside_runtime {
        quote!(#[cfg_attr(docsrs, doc(cfg(feature = #group)))])
    } else {
        quote!()
    };
    let group_doc = doc_lines(&format!(
        "The methods of group `{group}`, bound to a client: each function takes the method's \
         required parameters and returns its request, which takes optional parameters as \
         setters and is then `.await`ed (or `.send()`)."
    ));
    let tokens = quote! {
        #module_doc
        #cfg
        #[allow(deprecated, clippy::too_many_arguments, clippy::should_implement_trait, clippy::wrong_self_convention, clippy::new_ret_no_self, clippy::new_without_default, unused_imports)]
        pub mod #module_ident {
            use #rt as rt;

            #(#items)*

            #group_doc
            #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
            pub struct #group_ty<'c> {
                client: &'c rt::Client,
            }

            impl<'c> ::core::convert::From<&'c rt::Client> for #group_ty<'c> {
                fn from(client: &'c rt::Client) -> Self {
                    Self { client }
                }
            }

            impl<'c> #group_ty<'c> {
                #(#group_fns)*
            }
        }
    };
    let mut sample: Vec<String> = methods
        .iter()
        .take(3)
        .map(|m| format!("`{}`", m.wire))
        .collect();
    if methods.len() > 3 {
        sample.push("...".into());
    }
    let accessor_doc = doc_lines(&format!(
        "Methods of group `{group}` ({}): see [`{}::{group_ty}`].",
        sample.join(", "),
        module.text,
    ));
    let sig = quote! {
        #accessor_doc
        fn #module_ident(&self) -> #module_ident::#group_ty<'_>
    };
    let vis = if opts.inside_runtime {
        quote!(pub)
    } else {
        quote!()
    };
    let body = quote! {
        #accessor_doc
        #cfg
        #vis fn #module_ident(&self) -> #module_ident::#group_ty<'_> {
            ::core::convert::From::from(self)
        }
    };
    (tokens, Accessor { sig, body })
}

/// The `events` module: the `Event` enum over the spec's `[[event]]`s and its parser.
fn emit_events(spec: &Spec, rt: &TokenStream) -> TokenStream {
    if spec.events.is_empty() {
        return quote!();
    }
    let variants = spec.events.iter().map(|e| {
        let v = e.variant.ident();
        let data = format_ident!("{}", e.data);
        let link = e
            .docs
            .as_ref()
            .map(|d| format!(" [Bitrix24 docs]({d})"))
            .unwrap_or_default();
        let doc = doc_lines(&format!("`{}`: {}{link}", e.code, clean_doc(&e.summary)));
        quote!(#doc #v(rt::EventOf<super::types::#data>),)
    });
    let arms = spec.events.iter().map(|e| {
        let v = e.variant.ident();
        let code = &e.code;
        quote!(#code => Event::#v(rt::typed_event(&code, tree)?),)
    });
    let code_arms = spec.events.iter().map(|e| {
        let v = e.variant.ident();
        quote!(Event::#v(e) => &e.event,)
    });
    let auth_arms = spec.events.iter().map(|e| {
        let v = e.variant.ident();
        quote!(Event::#v(e) => e.auth.as_ref(),)
    });
    quote! {
        /// Incoming events (`[[event]]` in the spec): [`Event::parse`](events::Event::parse)
        /// turns a delivery body into a typed value.
        #[allow(clippy::large_enum_variant)]
        pub mod events {
            use #rt as rt;
            pub use rt::{decode_body, EventAuth, EventError, EventOf, Limits, UnknownEvent};

            /// An incoming event: typed when this version knows its code, else [`Event::Unknown`].
            #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq)]
            #[non_exhaustive]
            pub enum Event {
                #(#variants)*
                /// An event this version has no type for, kept whole.
                Unknown(UnknownEvent),
            }

            impl Event {
                /// Parses a delivery body: `application/x-www-form-urlencoded` with PHP bracket
                /// keys (every scalar a string), or JSON. `"42"` reads as a number, `Y`/`N` and
                /// `1`/`0` as booleans, empty strings as absent. Body size (1 MiB), nesting and
                /// pair count are capped ([`Limits::default`]).
                ///
                /// # Errors
                /// [`EventError`] for a body over a limit, invalid JSON, no `event` field, or a
                /// known event whose fields do not match its type.
                pub fn parse(content_type: &str, body: &[u8]) -> ::core::result::Result<Event, EventError> {
                    Self::parse_with(content_type, body, Limits::default())
                }

                /// [`parse`](Self::parse) with explicit limits.
                ///
                /// # Errors
                /// As for [`parse`](Self::parse).
                pub fn parse_with(content_type: &str, body: &[u8], limits: Limits) -> ::core::result::Result<Event, EventError> {
                    let (code, tree) = decode_body(content_type, body, limits)?;
                    ::core::result::Result::Ok(match code.as_str() {
                        #(#arms)*
                        _ => Event::Unknown(UnknownEvent::new(code, tree)),
                    })
                }

                /// The event code, upper case (`ONIMBOTMESSAGEADD`).
                pub fn code(&self) -> &str {
                    match self {
                        #(#code_arms)*
                        Event::Unknown(u) => &u.event,
                    }
                }

                /// The `auth` block (the acting user's token set and `application_token`), if any.
                pub fn auth(&self) -> ::core::option::Option<&EventAuth> {
                    match self {
                        #(#auth_arms)*
                        Event::Unknown(_) => ::core::option::Option::None,
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Docs
// ---------------------------------------------------------------------------------------

/// `#[doc = "..."]` attributes, one per line, so prettyplease prints `///` lines.
fn doc_lines(text: &str) -> TokenStream {
    let text = text.replace('\r', "");
    let lines = text.trim().lines().map(|l| {
        let l = if l.is_empty() {
            String::new()
        } else {
            format!(" {l}")
        };
        quote!(#[doc = #l])
    });
    quote!(#(#lines)*)
}

/// Makes free text from the spec safe for rustdoc: outside `code spans`, brackets that are
/// not a markdown link to an `http(s)` URL and angle brackets are escaped (they would be read
/// as intra-doc links and HTML tags), and bare URLs are wrapped in `<...>`.
pub fn clean_doc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '`' {
            // Copy a code span verbatim (up to the matching run of backticks).
            let run = chars[i..].iter().take_while(|&&x| x == '`').count();
            let close = (i + run..chars.len()).find(|&j| {
                chars[j..].iter().take_while(|&&x| x == '`').count() == run
                    && (j == 0 || chars[j - 1] != '`')
            });
            match close {
                Some(j) => {
                    out.extend(&chars[i..j + run]);
                    i = j + run;
                }
                None => {
                    // An unclosed backtick: escape it.
                    out.push_str("\\`");
                    i += 1;
                }
            }
            continue;
        }
        if c == '[' {
            // Keep `[text](http...)` links.
            if let Some(close) = chars[i..].iter().position(|&x| x == ']') {
                let j = i + close;
                let after: String = chars[j + 1..].iter().take(9).collect();
                if after.starts_with("(http://") || after.starts_with("(https://") {
                    if let Some(end) = chars[j..].iter().position(|&x| x == ')') {
                        out.extend(&chars[i..=j + end]);
                        i = j + end + 1;
                        continue;
                    }
                }
            }
            out.push_str("\\[");
            i += 1;
            continue;
        }
        let rest: String = chars[i..].iter().take(8).collect();
        if rest.starts_with("http://") || rest.starts_with("https://") {
            let end = (i..chars.len())
                .find(|&j| {
                    chars[j].is_whitespace() || matches!(chars[j], ')' | '>' | '"' | '\'' | ',')
                })
                .unwrap_or(chars.len());
            let mut url: String = chars[i..end].iter().collect();
            while url.ends_with('.') || url.ends_with(';') {
                url.pop();
            }
            let n = url.chars().count();
            out.push('<');
            out.push_str(&url);
            out.push('>');
            i += n;
            continue;
        }
        match c {
            ']' => out.push_str("\\]"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '*' if chars.get(i + 1) == Some(&'*') => {
                out.push_str("**");
                i += 1;
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// A short human name of a spec type for docs, as seen from a group module (links go to
/// `super::types::X`).
fn ty_doc(ty: &Ty) -> String {
    ty_doc_in(ty, false)
}

/// [`ty_doc`] from inside the `types` module itself (`[`X`]` resolves there as it is).
fn ty_doc_in(ty: &Ty, in_types: bool) -> String {
    match ty {
        Ty::String => "string".into(),
        Ty::Integer => "integer".into(),
        Ty::Id => "id".into(),
        Ty::Number => "number".into(),
        Ty::Boolean => "boolean".into(),
        Ty::Yn => "`Y`/`N` flag".into(),
        Ty::Date => "date `YYYY-MM-DD`".into(),
        Ty::DateTime => "ISO 8601 date-time".into(),
        Ty::Object => "JSON object".into(),
        Ty::Json => "JSON value".into(),
        Ty::Secret => "secret string".into(),
        Ty::List(t) => format!("list of {}", ty_doc_in(t, in_types)),
        Ty::Map(t) => format!("map of {}", ty_doc_in(t, in_types)),
        Ty::Named(n) if in_types => format!("[`{n}`]"),
        Ty::Named(n) => format!("[`{n}`](super::types::{n})"),
    }
}

fn field_doc(f: &Field, in_types: bool) -> String {
    let mut doc = String::new();
    if !f.doc.is_empty() {
        doc.push_str(&clean_doc(&f.doc));
        doc.push(' ');
    }
    doc.push_str(&format!("(`{}`, {}", f.wire, ty_doc_in(&f.ty, in_types)));
    if f.deprecated {
        doc.push_str(", deprecated by Bitrix24");
    }
    doc.push(')');
    doc
}

fn deprecation_note(dep: &str) -> String {
    if dep.contains(' ') {
        dep.to_owned()
    } else {
        format!("use `{dep}` instead.")
    }
}

fn method_doc(m: &MethodDef, group_ty: &proc_macro2::Ident) -> String {
    let mut doc = String::new();
    doc.push_str(&clean_doc(if m.summary.is_empty() {
        "No summary in the spec."
    } else {
        &m.summary
    }));
    let access = match m.access {
        Access::Read => "read",
        Access::Write => "write",
        Access::ReadWithEffects => "read that changes state",
    };
    doc.push_str(&format!("\n\n`{}` · {access}", m.wire));
    if !m.scope.is_empty() {
        doc.push_str(&format!(" · scope `{}`", m.scope));
    }
    if m.api == Api::V3 {
        doc.push_str(" · REST 3.0");
    }
    if let Some(d) = &m.docs {
        doc.push_str(&format!(" · [Bitrix24 docs]({d})"));
    }
    if let Some(dep) = &m.deprecated {
        doc.push_str(&format!(
            "\n\n**Deprecated by Bitrix24:** {}",
            clean_doc(&deprecation_note(dep))
        ));
    }
    let required: Vec<String> = m
        .params
        .iter()
        .filter(|p| p.required)
        .map(|p| format!("`{}`", p.wire))
        .collect();
    let optional = m.params.iter().filter(|p| !p.required).count();
    let group_module = &m.group_module.text;
    let link = if m.fn_name.raw {
        String::new()
    } else {
        format!(" ([`{group_ty}::{}`])", m.fn_name.text)
    };
    doc.push_str(&format!(
        "\n\nCall it as `client.{group_module}().{}(..)`{link}, or build it with [`new`](Self::new) and send it with `Client::call`. ",
        m.fn_name.source(),
    ));
    if required.is_empty() {
        doc.push_str("No required parameters");
    } else {
        doc.push_str(&format!("Required: {}", required.join(", ")));
    }
    if optional > 0 {
        doc.push_str(&format!("; {optional} optional (setters)"));
    }
    doc.push('.');
    if !m.requires.is_empty() {
        let alts: Vec<String> = m
            .requires
            .iter()
            .map(|g| {
                g.iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(" with ")
            })
            .collect();
        doc.push_str(&format!(
            " Also needs {}: a request without them is refused before it is sent.",
            alts.join(", or ")
        ));
    }
    doc.push_str(&format!("\n\nResult: {}", ty_doc(&m.result)));
    if !m.result_doc.is_empty() {
        doc.push_str(&format!(
            ": {}",
            clean_doc(m.result_doc.trim_end_matches('.'))
        ));
    }
    // Most result docs end with a sentence's full stop already ("ID of the new deal.").
    if !doc.ends_with(['.', '!', '?']) {
        doc.push('.');
    }
    if let Some(l) = &m.list {
        let at = if l.items.is_empty() {
            "`result`".to_owned()
        } else {
            format!("`result.{}`", l.items)
        };
        doc.push_str(&format!(
            " A list: items in {at}, 50 per page, paged by `{}`{}; [`stream`](Self::stream) \
             and [`collect_all`](Self::collect_all) fetch every page.",
            l.start,
            if l.fast_scan {
                " (fast `start = -1` scans supported)"
            } else {
                ""
            }
        ));
    }
    if !m.batch {
        doc.push_str(" Not allowed inside `batch`.");
    } else if m.query_bool == BoolForm::YesNo {
        doc.push_str(" Inside `batch`, booleans are sent as `Y`/`N`.");
    }
    doc.push_str("\n\n# Errors\nThose of [`Client::call`](rt::Client::call).");
    doc
}

// ---------------------------------------------------------------------------------------
// Types in Rust
// ---------------------------------------------------------------------------------------

/// The Rust type of a spec type in results (and in public fields).
fn out_ty(ty: &Ty) -> TokenStream {
    match ty {
        Ty::String => quote!(::std::string::String),
        Ty::Integer => quote!(i64),
        Ty::Id => quote!(u64),
        Ty::Number => quote!(f64),
        Ty::Boolean | Ty::Yn => quote!(bool),
        Ty::Date => quote!(rt::chrono::NaiveDate),
        Ty::DateTime => quote!(rt::chrono::DateTime<rt::chrono::FixedOffset>),
        Ty::Object => quote!(rt::Map<::std::string::String, rt::Value>),
        Ty::Json => quote!(rt::Value),
        Ty::Secret => quote!(rt::Secret),
        Ty::List(t) => {
            let t = out_ty(t);
            quote!(::std::vec::Vec<#t>)
        }
        Ty::Map(t) => {
            let t = out_ty(t);
            quote!(::std::collections::BTreeMap<::std::string::String, #t>)
        }
        Ty::Named(n) => {
            let n = format_ident!("{}", n);
            quote!(super::types::#n)
        }
    }
}

/// The type parameter of `IntoArg<T>` for a scalar spec type.
fn arg_ty(ty: &Ty) -> TokenStream {
    match ty {
        Ty::Object | Ty::Json => quote!(rt::Value),
        Ty::Yn => quote!(bool),
        other => out_ty(other),
    }
}

/// What a list or map element is taken as: exact numbers (so literals infer), `Into` for
/// strings and JSON.
fn elem_input(ty: &Ty) -> TokenStream {
    match ty {
        Ty::String => quote!(impl ::core::convert::Into<::std::string::String>),
        Ty::Object | Ty::Json => quote!(impl ::core::convert::Into<rt::Value>),
        Ty::Secret => quote!(impl ::core::convert::Into<rt::Secret>),
        other => arg_ty(other),
    }
}

/// Whether a value of this type may hold a secret: a `secret`, or a named struct (which may
/// have one), alone or in lists and maps.
fn may_hold_secret(ty: &Ty) -> bool {
    match ty {
        Ty::Secret | Ty::Named(_) => true,
        Ty::List(t) | Ty::Map(t) => may_hold_secret(t),
        _ => false,
    }
}

fn has_yn(ty: &Ty) -> bool {
    match ty {
        Ty::Yn => true,
        Ty::List(t) | Ty::Map(t) => has_yn(t),
        _ => false,
    }
}

/// `(parameter type, expression making an rt::Arg from `value`)` for a request or builder.
fn arg_input(ty: &Ty, value: &proc_macro2::Ident) -> (TokenStream, TokenStream) {
    let (input, make) = match ty {
        Ty::List(e) => {
            let item = elem_input(e);
            let et = arg_ty(e);
            (
                quote!(impl ::core::iter::IntoIterator<Item = #item>),
                quote!(rt::Arg::list::<#et, _>(#value)),
            )
        }
        Ty::Map(e) => {
            let item = elem_input(e);
            let et = arg_ty(e);
            (
                quote!(impl ::core::iter::IntoIterator<Item = (impl ::core::convert::Into<::std::string::String>, #item)>),
                quote!(rt::Arg::map::<#et, _, _, _>(#value)),
            )
        }
        other => {
            let t = arg_ty(other);
            (
                quote!(impl rt::IntoArg<#t>),
                quote!(rt::IntoArg::<#t>::into_arg(#value)),
            )
        }
    };
    let make = if has_yn(ty) { quote!(#make.yn()) } else { make };
    (input, make)
}

// ---------------------------------------------------------------------------------------
// Named types
// ---------------------------------------------------------------------------------------

fn emit_type(t: &TypeDef, usage: Usage) -> TokenStream {
    let link = t
        .docs
        .as_ref()
        .map(|d| format!(" [Bitrix24 docs]({d})"))
        .unwrap_or_default();
    let text = if t.doc.is_empty() {
        "No description in the spec.".to_owned()
    } else {
        clean_doc(&t.doc)
    };
    match &t.kind {
        TypeKind::Struct(fields) if usage.output => {
            emit_record(t, fields, usage.input, &format!("{text}{link}"))
        }
        TypeKind::Struct(fields) => emit_builder(t, fields, &format!("{text}{link}")),
        TypeKind::Enum(values) => emit_enum(t, values, &format!("{text}{link}")),
    }
}

/// A struct read from answers: public fields, `FromWire`; when also sent, `ToWire`, `new`
/// and setters.
fn emit_record(t: &TypeDef, fields: &[Field], input: bool, text: &str) -> TokenStream {
    let name = format_ident!("{}", t.name);
    let mut doc = text.to_owned();
    doc.push_str(
        "\n\nKeys the spec does not list (custom fields, newer additions) and optional values \
         that did not fit their type are kept, as sent, in [`extra`](Self::extra).",
    );
    if !t.dynamic.is_empty() {
        doc.push_str(&format!(
            " Custom fields: {}.",
            t.dynamic
                .iter()
                .map(|d| format!("`{d}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let doc = doc_lines(&doc);
    let decls = fields.iter().map(|f| {
        let ident = f.rust.ident();
        let t = out_ty(&f.ty);
        let t = if f.required {
            t
        } else {
            quote!(::core::option::Option<#t>)
        };
        let doc = doc_lines(&field_doc(f, true));
        quote!(#doc pub #ident: #t,)
    });
    let reads = fields.iter().map(|f| {
        let ident = f.rust.ident();
        let wire = &f.wire;
        if f.required {
            quote!(#ident: f.req(#wire)?,)
        } else {
            quote!(#ident: f.opt(#wire),)
        }
    });
    // A struct without fields only collects `extra`: `f` is not mutated then.
    let f = if fields.is_empty() {
        quote!(f)
    } else {
        quote!(mut f)
    };
    let mut out = quote! {
        #doc
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq)]
        #[non_exhaustive]
        pub struct #name {
            #(#decls)*
            /// Everything else the portal sent, by wire name.
            pub extra: rt::Map<::std::string::String, rt::Value>,
        }

        impl rt::FromWire for #name {
            fn from_wire(v: &rt::Value) -> ::core::result::Result<Self, rt::WireError> {
                let #f = rt::Fields::new(v)?;
                ::core::result::Result::Ok(Self {
                    #(#reads)*
                    extra: f.rest(),
                })
            }
        }
    };
    if input {
        let args: Vec<TokenStream> = fields
            .iter()
            .filter(|f| f.required)
            .map(|f| {
                let ident = f.rust.ident();
                let t = plain_input(&f.ty);
                quote!(#ident: #t)
            })
            .collect();
        let inits = fields.iter().map(|f| {
            let ident = f.rust.ident();
            if f.required {
                quote!(#ident: #ident.into(),)
            } else {
                quote!(#ident: ::core::option::Option::None,)
            }
        });
        let sets = fields.iter().filter(|f| !f.required).map(|f| {
            let ident = f.rust.ident();
            let t = plain_input(&f.ty);
            let doc = doc_lines(&format!("Sets [`{0}`](Self::{0}).", f.rust.text));
            let doc = if f.rust.raw {
                doc_lines(&format!("Sets `{}`.", f.rust.source()))
            } else {
                doc
            };
            quote! {
                #doc
                pub fn #ident(mut self, value: #t) -> Self {
                    self.#ident = ::core::option::Option::Some(value.into());
                    self
                }
            }
        });
        // Fields that may hold a secret (a `secret`, or a struct that has one): a request
        // parameter made from this value is then not printed by `Debug`.
        let secrets: Vec<TokenStream> = fields
            .iter()
            .filter(|f| may_hold_secret(&f.ty))
            .map(|f| {
                let ident = f.rust.ident();
                quote!(rt::ToWire::contains_secret(&self.#ident))
            })
            .collect();
        let contains_secret = if secrets.is_empty() {
            quote!()
        } else {
            quote! {
                fn contains_secret(&self) -> bool {
                    #(#secrets)||*
                }
            }
        };
        let puts = fields.iter().map(|f| {
            let ident = f.rust.ident();
            let wire = &f.wire;
            if has_yn(&f.ty) {
                quote!(rt::put_yn(&mut m, #wire, &self.#ident);)
            } else {
                quote!(rt::put(&mut m, #wire, &self.#ident);)
            }
        });
        out.extend(quote! {
            impl #name {
                /// A value from its required fields; optional fields start as `None`.
                pub fn new(#(#args),*) -> Self {
                    Self { #(#inits)* extra: rt::Map::new() }
                }

                #(#sets)*
            }

            impl rt::ToWire for #name {
                fn to_wire(&self) -> rt::Value {
                    let mut m = self.extra.clone();
                    #(#puts)*
                    rt::Value::Object(m)
                }

                #contains_secret
            }

            impl rt::IntoArg<#name> for #name {
                fn into_arg(self) -> rt::Arg {
                    rt::Arg::of(&self)
                }
            }
        });
    }
    out
}

/// How a public field is set: exact types for numbers and flags (so literals infer), `Into`
/// for everything else.
fn plain_input(ty: &Ty) -> TokenStream {
    match ty {
        Ty::Integer | Ty::Id | Ty::Number | Ty::Boolean | Ty::Yn => out_ty(ty),
        other => {
            let t = out_ty(other);
            quote!(impl ::core::convert::Into<#t>)
        }
    }
}

/// A struct only sent: a builder over `Params`, with `new(required)` and setters.
fn emit_builder(t: &TypeDef, fields: &[Field], text: &str) -> TokenStream {
    let name = format_ident!("{}", t.name);
    let mut doc = text.to_owned();
    doc.push_str("\n\nBuilt with [`new`](Self::new) (required fields) and setters; any other field (custom fields");
    if !t.dynamic.is_empty() {
        doc.push_str(&format!(
            " such as {}",
            t.dynamic
                .iter()
                .map(|d| format!("`{d}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    doc.push_str(") with [`field`](Self::field).");
    let doc = doc_lines(&doc);
    let (args, sets_new) = constructor(fields);
    let sets = setters(fields, true);
    let default = if fields.iter().all(|f| !f.required) {
        quote!(::core::default::Default,)
    } else {
        quote!()
    };
    let new_doc = doc_lines(&constructor_doc("A value", fields, true));
    let new_body = new_body(&sets_new);
    quote! {
        #doc
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq, #default)]
        #[must_use]
        pub struct #name {
            p: rt::Params,
        }

        impl #name {
            #new_doc
            pub fn new(#(#args),*) -> Self {
                #new_body
                Self { p }
            }

            #(#sets)*

            /// Sets any field by its wire name: a custom field (`UF_CRM_...`) or one the
            /// spec does not list.
            pub fn field(mut self, name: impl ::core::convert::Into<::std::string::String>, value: impl ::core::convert::Into<rt::Value>) -> Self {
                self.p.set(name.into(), rt::Arg::new(value.into()));
                self
            }
        }

        impl rt::ToWire for #name {
            fn to_wire(&self) -> rt::Value {
                self.p.to_value()
            }

            fn contains_secret(&self) -> bool {
                self.p.contains_secret()
            }
        }

        impl rt::IntoArg<#name> for #name {
            fn into_arg(self) -> rt::Arg {
                self.p.into_arg()
            }
        }
    }
}

fn emit_enum(t: &TypeDef, values: &[(String, RustName)], text: &str) -> TokenStream {
    let name = format_ident!("{}", t.name);
    let doc = doc_lines(&format!(
        "{text}\n\nValues the portal sends that this version does not know are kept in [`Other`](Self::Other)."
    ));
    let variants = values.iter().map(|(wire, v)| {
        let v = v.ident();
        let d = format!(" `{wire}`");
        quote!(#[doc = #d] #v,)
    });
    let to_str = values.iter().map(|(wire, v)| {
        let v = v.ident();
        quote!(Self::#v => #wire,)
    });
    let from_str = values.iter().map(|(wire, v)| {
        let v = v.ident();
        quote!(#wire => Self::#v,)
    });
    quote! {
        #doc
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq, ::core::cmp::Eq, ::core::hash::Hash)]
        #[non_exhaustive]
        pub enum #name {
            #(#variants)*
            /// A value this version of the spec does not list, kept verbatim.
            Other(::std::string::String),
        }

        impl #name {
            /// The wire value.
            pub fn as_str(&self) -> &str {
                match self {
                    #(#to_str)*
                    Self::Other(s) => s,
                }
            }
        }

        impl ::core::convert::From<&str> for #name {
            fn from(value: &str) -> Self {
                match value {
                    #(#from_str)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl ::core::fmt::Display for #name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl rt::FromWire for #name {
            fn from_wire(v: &rt::Value) -> ::core::result::Result<Self, rt::WireError> {
                rt::enum_str(v).map(|s| Self::from(s.as_str()))
            }
        }

        impl rt::ToWire for #name {
            fn to_wire(&self) -> rt::Value {
                rt::Value::String(self.as_str().to_owned())
            }
        }

        impl rt::IntoArg<#name> for #name {
            fn into_arg(self) -> rt::Arg {
                rt::Arg::new(rt::ToWire::to_wire(&self))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Methods
// ---------------------------------------------------------------------------------------

fn constructor_doc(what: &str, fields: &[Field], in_types: bool) -> String {
    let required: Vec<&Field> = fields.iter().filter(|f| f.required).collect();
    if required.is_empty() {
        return format!("{what} with no parameters set yet.");
    }
    let mut doc = format!("{what} from its required parameters:");
    for f in required {
        doc.push_str(&format!(
            "\n- `{}`: {}",
            f.rust.source(),
            field_doc(f, in_types)
        ));
    }
    doc
}

/// `let p = ...;` for a constructor.
fn new_body(sets: &[TokenStream]) -> TokenStream {
    if sets.is_empty() {
        quote!(let p = rt::Params::new();)
    } else {
        quote! {
            let mut p = rt::Params::new();
            #(#sets)*
        }
    }
}

/// Constructor arguments and the statements setting them into `p`.
fn constructor(fields: &[Field]) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let mut args = Vec::new();
    let mut sets = Vec::new();
    for f in fields.iter().filter(|f| f.required) {
        let ident = f.rust.ident();
        let wire = &f.wire;
        let (input, make) = arg_input(&f.ty, &ident);
        args.push(quote!(#ident: #input));
        sets.push(quote!(p.set(#wire, #make);));
    }
    (args, sets)
}

/// One setter per optional parameter.
fn setters(fields: &[Field], in_types: bool) -> Vec<TokenStream> {
    let value = format_ident!("value");
    fields
        .iter()
        .filter(|f| !f.required)
        .map(|f| {
            let ident = f.rust.ident();
            let wire = &f.wire;
            let (input, make) = arg_input(&f.ty, &value);
            let doc = doc_lines(&field_doc(f, in_types));
            let deprecated = if f.deprecated {
                quote!(#[deprecated(note = "deprecated by Bitrix24")])
            } else {
                quote!()
            };
            quote! {
                #doc
                #deprecated
                pub fn #ident(mut self, value: #input) -> Self {
                    self.p.set(#wire, #make);
                    self
                }
            }
        })
        .collect()
}

fn meta(m: &MethodDef) -> TokenStream {
    let wire = &m.wire;
    let group = &m.group;
    let access = match m.access {
        Access::Read => quote!(rt::Access::Read),
        Access::Write => quote!(rt::Access::Write),
        Access::ReadWithEffects => quote!(rt::Access::ReadWithEffects),
    };
    let mut chain = quote!(rt::MethodMeta::new(#wire, #access).group(#group));
    if !m.scope.is_empty() {
        let s = &m.scope;
        chain = quote!(#chain.scope(#s));
    }
    if m.api == Api::V3 {
        chain = quote!(#chain.api(rt::ApiVersion::V3));
    }
    if let Some(d) = &m.docs {
        chain = quote!(#chain.docs(#d));
    }
    if let Some(d) = &m.deprecated {
        chain = quote!(#chain.deprecated(#d));
    }
    if !m.batch {
        chain = quote!(#chain.batch(false));
    }
    if m.query_bool == BoolForm::YesNo {
        chain = quote!(#chain.query_bool(rt::BoolForm::YesNo));
    }
    if !m.requires.is_empty() {
        let groups = m.requires.iter().map(|g| quote!(&[#(#g),*]));
        chain = quote!(#chain.requires(&[#(#groups),*]));
    }
    if let Some(l) = &m.list {
        let items = &l.items;
        let mut list = quote!(rt::ListModel::new(#items));
        if l.id != "ID" {
            let id = &l.id;
            list = quote!(#list.id(#id));
        }
        if l.answer_id != l.id {
            let a = &l.answer_id;
            list = quote!(#list.answer_id(#a));
        }
        if l.fast_scan {
            list = quote!(#list.fast_scan(true));
        }
        if (
            l.filter.as_str(),
            l.order.as_str(),
            l.select.as_str(),
            l.start.as_str(),
        ) != ("filter", "order", "select", "start")
        {
            let (f, o, s, st) = (&l.filter, &l.order, &l.select, &l.start);
            list = quote!(#list.keys(#f, #o, #s, #st));
        }
        chain = quote!(#chain.list(#list));
    }
    chain
}

fn emit_method(m: &MethodDef, group_ty: &proc_macro2::Ident) -> TokenStream {
    let name = m.type_name.ident();
    let doc = doc_lines(&method_doc(m, group_ty));
    let deprecated = m.deprecated.as_ref().map(|d| {
        let note = deprecation_note(d);
        quote!(#[deprecated(note = #note)])
    });
    let (args, sets_new) = constructor(&m.params);
    let sets = setters(&m.params, false);
    let output = out_ty(&m.result);
    let meta = meta(m);
    let default = if m.params.iter().all(|f| !f.required) {
        quote! {
            impl ::core::default::Default for #name {
                fn default() -> Self {
                    Self::new()
                }
            }
        }
    } else {
        quote!()
    };
    let new_body = new_body(&sets_new);
    let new_doc = doc_lines(&constructor_doc(
        "The request, not bound to a client (send it with [`Client::call`](rt::Client::call)),",
        &m.params,
        false,
    ));
    let (list_impl, list_fns) = list_methods(m, &name);
    let alias = &m.wire;
    quote! {
        #doc
        #deprecated
        #[doc(alias = #alias)]
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        #[must_use = "a request does nothing until it is awaited, `.send()` or passed to `Client::call`"]
        pub struct #name<C = ()> {
            client: C,
            p: rt::Params,
        }

        impl #name {
            #new_doc
            pub fn new(#(#args),*) -> Self {
                #new_body
                Self { client: (), p }
            }
        }

        #default

        impl<C> #name<C> {
            #(#sets)*

            /// Sets a top-level parameter the spec does not list (`auth_connector` for
            /// offline events...) by its wire name; replaces a value set before.
            pub fn extra(mut self, name: impl ::core::convert::Into<::std::string::String>, value: impl ::core::convert::Into<rt::Value>) -> Self {
                self.p.set(name.into(), rt::Arg::new(value.into()));
                self
            }

            /// How this call is retried, instead of the client's policy.
            pub fn retry(mut self, retry: rt::Retry) -> Self {
                self.p.set_retry(retry);
                self
            }

            /// The deadline of this whole call (waits and retries included), instead of the
            /// client's.
            pub fn timeout(mut self, timeout: ::core::time::Duration) -> Self {
                self.p.set_timeout(timeout);
                self
            }
        }

        impl<C> rt::Method for #name<C> {
            const META: &'static rt::MethodMeta = &#meta;
            type Output = #output;

            fn wire_params(&self) -> &rt::Params {
                &self.p
            }
        }

        #list_impl

        impl ::core::future::IntoFuture for #name<rt::Client> {
            type Output = ::core::result::Result<#output, rt::Error>;
            type IntoFuture = rt::ResponseFuture<#output>;

            fn into_future(self) -> Self::IntoFuture {
                rt::send(self.client, <Self as rt::Method>::META, self.p)
            }
        }

        impl #name<rt::Client> {
            /// Sends the request through the client it came from; the same as `.await`ing it.
            pub fn send(self) -> rt::ResponseFuture<#output> {
                ::core::future::IntoFuture::into_future(self)
            }

            /// Sends the request; answers with the result and the envelope's `total`, `next`
            /// and `time`.
            pub fn send_with_meta(self) -> rt::ResponseFuture<rt::Response<#output>> {
                rt::send_with_meta(self.client, <Self as rt::Method>::META, self.p)
            }

            #list_fns
        }
    }
}

/// For a list method: its `ListMethod` impl, and `stream` / `collect_all` on the request
/// bound to a client. Both are `#[inline]`: like the generic setters, they are compiled only
/// in the programs that call them.
fn list_methods(m: &MethodDef, name: &proc_macro2::Ident) -> (TokenStream, TokenStream) {
    let Some(l) = &m.list else {
        return (quote!(), quote!());
    };
    let item = l.item.as_ref().map_or_else(|| quote!(rt::Value), out_ty);
    let what = match &l.item {
        Some(t) => ty_doc(t),
        None => "JSON values (the spec does not type them)".to_owned(),
    };
    let at = if l.items.is_empty() {
        "`result`".to_owned()
    } else {
        format!("`result.{}`", l.items)
    };
    let impl_doc = doc_lines(&format!("A page's items, read from {at}: {what}."));
    let stream_doc = doc_lines(&format!(
        "Every item this request matches, as a [`ListStream`](rt::ListStream) of {what}.\n\n\
         Pages are fetched lazily: one request (up to 50 items) whenever the stream runs out,\n\
         this request again with `{}` set to the `next` of the previous answer. See\n\
         [list methods](https://apidocs.bitrix24.com/settings/how-to-call-rest-api/list-methods-pecularities.html).",
        l.start
    ));
    let collect_doc = doc_lines(
        "Fetches every page and returns all the items in one `Vec`: [`stream`](Self::stream),\n\
         collected. A large list is better consumed as the stream, one page in memory at a\n\
         time.\n\n\
         # Errors\n\
         The first error of any page (those of [`Client::call`](rt::Client::call)).",
    );
    let list_impl = quote! {
        #impl_doc
        impl<C> rt::ListMethod for #name<C> {
            type Item = #item;
        }
    };
    let list_fns = quote! {
        #stream_doc
        #[inline]
        pub fn stream(self) -> rt::ListStream<#item> {
            self.client.stream(&self)
        }

        #collect_doc
        #[inline]
        pub fn collect_all(self) -> impl ::core::future::Future<Output = ::core::result::Result<::std::vec::Vec<#item>, rt::Error>> {
            self.stream().collect_all()
        }
    };
    (list_impl, list_fns)
}

fn emit_group_fn(m: &MethodDef) -> TokenStream {
    let name = m.type_name.ident();
    let f = m.fn_name.ident();
    let (args, _) = constructor(&m.params);
    let arg_names: Vec<_> = m
        .params
        .iter()
        .filter(|f| f.required)
        .map(|f| f.rust.ident())
        .collect();
    let doc = doc_lines(&format!(
        "{} `{}`: see [`{}`].",
        clean_doc(if m.summary.is_empty() {
            "Calls the method."
        } else {
            &m.summary
        }),
        m.wire,
        m.type_name.text
    ));
    let deprecated = m.deprecated.as_ref().map(|d| {
        let note = deprecation_note(d);
        quote!(#[deprecated(note = #note)])
    });
    // rustdoc refuses an alias equal to the item's own name (`profile`).
    let alias = (m.wire != m.fn_name.text).then(|| {
        let wire = &m.wire;
        quote!(#[doc(alias = #wire)])
    });
    quote! {
        #doc
        #deprecated
        #alias
        pub fn #f(&self, #(#args),*) -> #name<rt::Client> {
            let r = #name::new(#(#arg_names),*);
            #name { client: self.client.clone(), p: r.p }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::clean_doc;

    #[test]
    fn docs_are_made_safe_for_rustdoc() {
        assert_eq!(
            clean_doc("use `fields[TITLE]` or fields[TITLE]"),
            "use `fields[TITLE]` or fields\\[TITLE\\]"
        );
        assert_eq!(
            clean_doc("see [docs](https://x.y/z) and <b>"),
            "see [docs](https://x.y/z) and &lt;b&gt;"
        );
        assert_eq!(clean_doc("at https://x.y/z."), "at <https://x.y/z>.");
        assert_eq!(clean_doc("odd ` tick"), "odd \\` tick");
        assert_eq!(clean_doc("**bold**"), "**bold**");
    }
}
