//! Turns a validated [`Spec`] into Rust tokens.
//!
//! The generated code is meant to be `include!`d into the `bitrix24` crate. It refers to the
//! hand-written runtime only through `crate::Client`, `crate::Method` and
//! `crate::__private::*`, and to its own items through relative paths (`super::types::X`), so
//! the same output can be included at any module depth (the snapshot test does that).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::spec::{Field, MethodDef, Spec, Ty, TypeDef, TypeKind};

/// Emits the whole generated file.
pub fn emit(spec: &Spec) -> TokenStream {
    let types = spec.types.iter().map(emit_type);
    let mut scopes = Vec::new();
    let mut accessors = Vec::new();
    for (scope, module) in spec.scopes() {
        let methods: Vec<&MethodDef> = spec.methods.iter().filter(|m| m.scope == scope).collect();
        let module_ident = module.ident();
        let group = format_ident!(
            "{}Methods",
            crate::naming::pascal(scope).expect("validated").text
        );
        let items = methods.iter().map(|m| emit_method(m, &group));
        let group_fns = methods.iter().map(|m| emit_group_fn(m));
        let scope_doc = doc_lines(&format!(
            "Methods of scope `{scope}`: request types and the [`{group}`]({}::{group}) group returned by \
             [`Client::{}`](crate::Client::{}).",
            module.text, module.text, module.text
        ));
        let group_doc = doc_lines(&format!(
            "The methods of scope `{scope}`, bound to a client: each function takes the method's \
             required parameters and returns its request, which can be configured with setters \
             and then `.await`ed (or `.send()`)."
        ));
        scopes.push(quote! {
            #scope_doc
            #[allow(deprecated, clippy::too_many_arguments, clippy::should_implement_trait, clippy::wrong_self_convention, clippy::new_ret_no_self)]
            pub mod #module_ident {
                use crate::__private::wire;

                #(#items)*

                #group_doc
                #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
                pub struct #group<'c> {
                    pub(crate) client: &'c crate::Client,
                }

                impl<'c> #group<'c> {
                    #(#group_fns)*
                }
            }
        });
        let mut sample: Vec<String> = methods
            .iter()
            .take(3)
            .map(|m| format!("`{}`", m.wire))
            .collect();
        if methods.len() > 3 {
            sample.push("...".into());
        }
        let accessor_doc = doc_lines(&format!(
            "Methods of scope `{scope}` ({}).\n\nFor example `client.{}().{}(...)`; see [`{}::{group}`].",
            sample.join(", "),
            module.text,
            methods[0].fn_name.source(),
            module.text,
        ));
        accessors.push(quote! {
            #accessor_doc
            pub fn #module_ident(&self) -> #module_ident::#group<'_> {
                #module_ident::#group { client: self }
            }
        });
    }
    let use_wire = if spec.types.is_empty() {
        quote!()
    } else {
        quote!(
            use crate::__private::wire;
        )
    };
    let events = emit_events(spec);
    quote! {
        /// Named types shared by methods: request parameters and result shapes.
        #[allow(clippy::should_implement_trait, clippy::wrong_self_convention, clippy::too_many_arguments)]
        pub mod types {
            #use_wire

            #(#types)*
        }

        #(#scopes)*

        #events

        impl crate::Client {
            #(#accessors)*
        }
    }
}

/// The `events` module: the `Event` enum over the spec's `[[event]]`s and its parser.
fn emit_events(spec: &Spec) -> TokenStream {
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
        let doc = doc_lines(&format!("`{}`: {}{link}", e.code, e.summary));
        quote!(#doc #v(crate::event::EventOf<super::types::#data>),)
    });
    let arms = spec.events.iter().map(|e| {
        let v = e.variant.ident();
        let code = &e.code;
        quote!(#code => Event::#v(crate::event::typed(&code, tree)?),)
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
        /// Incoming events (`[[event]]` in methods.toml): [`Event::parse`] turns a delivery
        /// body into a typed value.
        #[allow(clippy::large_enum_variant)]
        pub mod events {
            pub use crate::event::{decode_body, EventAuth, EventError, EventOf, UnknownEvent};
            pub use crate::php::Limits;

            /// An incoming event: typed when this version knows its code, else [`Event::Unknown`].
            #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq)]
            #[non_exhaustive]
            pub enum Event {
                #(#variants)*
                /// An event this version has no type for, kept whole.
                Unknown(crate::event::UnknownEvent),
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
                    let (code, tree) = crate::event::decode_body(content_type, body, limits)?;
                    ::core::result::Result::Ok(match code.as_str() {
                        #(#arms)*
                        _ => Event::Unknown(crate::event::UnknownEvent { event: code, raw: tree }),
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
                pub fn auth(&self) -> ::core::option::Option<&crate::event::EventAuth> {
                    match self {
                        #(#auth_arms)*
                        Event::Unknown(_) => ::core::option::Option::None,
                    }
                }
            }
        }
    }
}

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

/// The Rust type of a spec type.
fn rust_ty(ty: &Ty) -> TokenStream {
    match ty {
        Ty::String => quote!(::std::string::String),
        Ty::Integer => quote!(i64),
        Ty::Id => quote!(u64),
        Ty::Number => quote!(f64),
        Ty::Boolean | Ty::Yn => quote!(bool),
        Ty::Date => quote!(crate::__private::chrono::NaiveDate),
        Ty::DateTime => {
            quote!(crate::__private::chrono::DateTime<crate::__private::chrono::FixedOffset>)
        }
        Ty::Object | Ty::Json => quote!(crate::__private::serde_json::Value),
        Ty::Secret => quote!(crate::Secret),
        Ty::List(t) => {
            let t = rust_ty(t);
            quote!(::std::vec::Vec<#t>)
        }
        Ty::Map(t) => {
            let t = rust_ty(t);
            quote!(::std::collections::BTreeMap<::std::string::String, #t>)
        }
        Ty::Named(n) => {
            let n = format_ident!("{}", n);
            quote!(super::types::#n)
        }
    }
}

/// The wire adapter (a `serde_with` `SerializeAs`/`DeserializeAs` type) for a spec type; every
/// generated module imports `crate::__private::wire`.
fn adapter(ty: &Ty) -> TokenStream {
    match ty {
        Ty::String => quote!(wire::Str),
        Ty::Integer | Ty::Id => quote!(wire::Int),
        Ty::Number => quote!(wire::Num),
        Ty::Boolean => quote!(wire::Bool),
        Ty::Yn => quote!(wire::Yn),
        Ty::Object => quote!(wire::Obj),
        Ty::Date | Ty::DateTime | Ty::Json | Ty::Secret | Ty::Named(_) => quote!(wire::Same),
        Ty::List(t) => {
            let t = adapter(t);
            quote!(wire::List<#t>)
        }
        Ty::Map(t) => {
            let t = adapter(t);
            quote!(wire::Map<#t>)
        }
    }
}

/// A short human name of a spec type for docs.
fn ty_doc(ty: &Ty) -> String {
    match ty {
        Ty::String => "string".into(),
        Ty::Integer => "integer".into(),
        Ty::Id => "id".into(),
        Ty::Number => "number".into(),
        Ty::Boolean => "boolean".into(),
        Ty::Yn => "Y/N flag".into(),
        Ty::Date => "date `YYYY-MM-DD`".into(),
        Ty::DateTime => "ISO 8601 date-time".into(),
        Ty::Object => "JSON object".into(),
        Ty::Json => "JSON value".into(),
        Ty::Secret => "secret string".into(),
        Ty::List(t) => format!("list of {}", ty_doc(t)),
        Ty::Map(t) => format!("map of {}", ty_doc(t)),
        Ty::Named(n) => format!("[`{n}`](super::types::{n})"),
    }
}

/// How a constructor argument or setter takes a value of this type: `(parameter type, conversion)`.
fn input(ty: &Ty) -> (TokenStream, bool) {
    let t = rust_ty(ty);
    match ty {
        Ty::String | Ty::List(_) | Ty::Object | Ty::Json | Ty::Secret | Ty::Named(_) => {
            (quote!(impl ::core::convert::Into<#t>), true)
        }
        _ => (t, false),
    }
}

/// Whether a value of this type is written differently from serde's default encoding of its
/// Rust type (only Y/N flags are: `bool` would become `true`/`false`).
fn needs_wire_serializer(ty: &Ty) -> bool {
    match ty {
        Ty::Yn => true,
        Ty::List(t) | Ty::Map(t) => needs_wire_serializer(t),
        _ => false,
    }
}

/// A doc link to a struct member (`[`name`](Self::name)`); raw identifiers (`r#type`), which
/// rustdoc cannot resolve in links, are printed as code.
fn member_link(name: &crate::naming::RustName) -> String {
    if name.raw {
        format!("`{}`", name.source())
    } else {
        format!("[`{0}`](Self::{0})", name.text)
    }
}

/// Struct field declarations with their serde attributes. `decode` is set for named types,
/// which are also read from responses and so need the tolerant wire adapters; request
/// structs are only written and get an adapter only where the encoding differs (Y/N).
fn field_decls(fields: &[Field], decode: bool) -> Vec<TokenStream> {
    fields
        .iter()
        .map(|f| {
            let ident = f.rust.ident();
            let wire = &f.wire;
            let kind = if f.required { "required" } else { "optional" };
            let doc = doc_lines(&format!(
                "{}\n\nWire name `{wire}`, {}, {kind}.",
                if f.doc.is_empty() {
                    "No description in the spec."
                } else {
                    &f.doc
                },
                ty_doc(&f.ty)
            ));
            let t = rust_ty(&f.ty);
            let adapted = adapter(&f.ty).to_string().replace(' ', "");
            let mut attrs: Vec<TokenStream> = Vec::new();
            if f.rust.text != *wire {
                attrs.push(quote!(rename = #wire));
            }
            if !f.required {
                if decode {
                    attrs.push(quote!(default));
                }
                attrs.push(quote!(
                    skip_serializing_if = "::core::option::Option::is_none"
                ));
            }
            if decode || needs_wire_serializer(&f.ty) {
                let with = if f.required {
                    format!("wire::As::<{adapted}>")
                } else {
                    format!("wire::As::<wire::Opt<{adapted}>>")
                };
                attrs.push(quote!(with = #with));
            }
            let serde = if attrs.is_empty() {
                quote!()
            } else {
                quote!(#[serde(#(#attrs),*)])
            };
            let t = if f.required {
                t
            } else {
                quote!(::core::option::Option<#t>)
            };
            quote! {
                #doc
                #serde
                pub #ident: #t,
            }
        })
        .collect()
}

/// Constructor arguments and the field initialisers for `Self { .. }`.
fn constructor_parts(fields: &[Field]) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let mut args = Vec::new();
    let mut inits = Vec::new();
    for f in fields {
        let ident = f.rust.ident();
        if f.required {
            let (t, into) = input(&f.ty);
            args.push(quote!(#ident: #t));
            inits.push(if into {
                quote!(#ident: #ident.into())
            } else {
                quote!(#ident)
            });
        } else {
            inits.push(quote!(#ident: ::core::option::Option::None));
        }
    }
    (args, inits)
}

/// `x(value)` and `set_x(Option<value>)` for every optional field.
fn setters(fields: &[Field]) -> Vec<TokenStream> {
    fields
        .iter()
        .filter(|f| !f.required)
        .map(|f| {
            let ident = f.rust.ident();
            let set = format_ident!("{}", crate::naming::setter(&f.rust));
            let (t, into) = input(&f.ty);
            let full = rust_ty(&f.ty);
            let value = if into {
                quote!(value.into())
            } else {
                quote!(value)
            };
            let link = member_link(&f.rust);
            let doc = doc_lines(&format!("Sets {link} (`{}`).", f.wire));
            let set_doc = doc_lines(&format!(
                "Sets {link} (`{}`) from an `Option`; `None` leaves it out of the request.",
                f.wire
            ));
            quote! {
                #doc
                pub fn #ident(mut self, value: #t) -> Self {
                    self.#ident = ::core::option::Option::Some(#value);
                    self
                }
                #set_doc
                pub fn #set(mut self, value: ::core::option::Option<#full>) -> Self {
                    self.#ident = value;
                    self
                }
            }
        })
        .collect()
}

fn params_doc(fields: &[Field]) -> String {
    if fields.is_empty() {
        return "None.".into();
    }
    fields
        .iter()
        .map(|f| {
            format!(
                "- {} (`{}`, {}, {}): {}",
                member_link(&f.rust),
                f.wire,
                ty_doc(&f.ty),
                if f.required { "required" } else { "optional" },
                if f.doc.is_empty() {
                    "-"
                } else {
                    f.doc.lines().next().unwrap_or("")
                }
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn emit_type(t: &TypeDef) -> TokenStream {
    let name = format_ident!("{}", t.name);
    let link = t
        .docs
        .as_ref()
        .map(|d| format!("\n\n[Bitrix24 docs]({d})"))
        .unwrap_or_default();
    match &t.kind {
        TypeKind::Struct(fields) => {
            let doc = doc_lines(&format!(
                "{}{link}\n\n# Fields\n{}\n\nUnknown fields the portal sends are kept in [`extra`](Self::extra); numbers \
                 sent as strings, `Y`/`N` and `1`/`0` flags and empty strings for absent values are accepted.",
                if t.doc.is_empty() { "No description in the spec." } else { &t.doc },
                params_doc(fields)
            ));
            let decls = field_decls(fields, true);
            let (args, inits) = constructor_parts(fields);
            let sets = setters(fields);
            let default = if fields.iter().all(|f| !f.required) {
                quote!(::core::default::Default,)
            } else {
                quote!()
            };
            quote! {
                #doc
                #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq, #default ::serde::Serialize, ::serde::Deserialize)]
                #[non_exhaustive]
                pub struct #name {
                    #(#decls)*
                    /// Fields not listed in the spec (custom `UF_*` fields, newer additions), by wire name.
                    #[serde(flatten)]
                    pub extra: crate::__private::serde_json::Map<::std::string::String, crate::__private::serde_json::Value>,
                }

                impl #name {
                    /// Creates a value from its required fields; optional fields start as `None`.
                    pub fn new(#(#args),*) -> Self {
                        Self { #(#inits,)* extra: crate::__private::serde_json::Map::new() }
                    }

                    #(#sets)*
                }
            }
        }
        TypeKind::Enum(values) => {
            let doc = doc_lines(&format!(
                "{}{link}\n\nValues the portal sends that this version does not know are kept in [`Other`](Self::Other).",
                if t.doc.is_empty() { "No description in the spec." } else { &t.doc }
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

                impl ::serde::Serialize for #name {
                    fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error> {
                        serializer.serialize_str(self.as_str())
                    }
                }

                impl<'de> ::serde::Deserialize<'de> for #name {
                    fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::core::result::Result<Self, D::Error> {
                        crate::__private::wire::enum_string(deserializer).map(|s| Self::from(s.as_str()))
                    }
                }
            }
        }
    }
}

fn method_doc(m: &MethodDef) -> String {
    let mut doc = String::new();
    doc.push_str(if m.summary.is_empty() {
        "No summary in the spec."
    } else {
        &m.summary
    });
    doc.push_str(&format!(
        "\n\nCalls `{}` (scope `{}`; {}).",
        m.wire,
        m.scope,
        if m.read {
            "a read, safe to retry"
        } else {
            "a write, never retried into a duplicate"
        }
    ));
    if let Some(d) = &m.docs {
        doc.push_str(&format!(" [Bitrix24 docs]({d})"));
    }
    if let Some(dep) = &m.deprecated {
        doc.push_str(&format!(
            "\n\n**Deprecated by Bitrix24:** {}",
            deprecation_note(dep)
        ));
    }
    doc.push_str(&format!("\n\n# Parameters\n{}", params_doc(&m.params)));
    doc.push_str(&format!(
        "\n\n# Result\n{}{}",
        ty_doc(&m.result),
        if m.result_doc.is_empty() {
            String::new()
        } else {
            format!(": {}", m.result_doc)
        }
    ));
    doc.push_str(
        "\n\n# Errors\nThe errors of [`Client::call`](crate::Client::call): an API error with the \
         portal's code ([`Error::code`](crate::Error::code)), a transport or HTTP error, a decode error \
         if the result does not match, or a token refresh error for OAuth clients.",
    );
    doc
}

fn deprecation_note(dep: &str) -> String {
    if dep.contains(' ') {
        dep.to_owned()
    } else {
        format!("use `{dep}` instead.")
    }
}

fn emit_method(m: &MethodDef, _group: &proc_macro2::Ident) -> TokenStream {
    let name = m.type_name.ident();
    let wire = &m.wire;
    let doc = doc_lines(&method_doc(m));
    let deprecated = m.deprecated.as_ref().map(|d| {
        let note = deprecation_note(d);
        quote!(#[deprecated(note = #note)])
    });
    let decls = field_decls(&m.params, false);
    let (args, inits) = constructor_parts(&m.params);
    let arg_names: Vec<_> = m
        .params
        .iter()
        .filter(|f| f.required)
        .map(|f| f.rust.ident())
        .collect();
    let sets = setters(&m.params);
    let read = m.read;
    let output = rust_ty(&m.result);
    let wire_ty = adapter(&m.result);
    let default = if m.params.iter().all(|f| !f.required) {
        quote!(::core::default::Default,)
    } else {
        quote!()
    };
    quote! {
        #doc
        #deprecated
        #[derive(::core::clone::Clone, ::core::fmt::Debug, #default ::serde::Serialize)]
        #[must_use = "a request does nothing until it is awaited, `.send()` or passed to `Client::call`"]
        pub struct #name<C = ()> {
            #[serde(skip)]
            client: C,
            #(#decls)*
        }

        impl #name {
            /// Creates the request from its required parameters, not bound to a client: send it
            /// with [`Client::call`](crate::Client::call).
            pub fn new(#(#args),*) -> Self {
                Self::with_client((), #(#arg_names),*)
            }
        }

        impl<C> #name<C> {
            fn with_client(client: C, #(#args),*) -> Self {
                Self { client, #(#inits,)* }
            }

            #(#sets)*
        }

        impl<C: ::core::marker::Sync> crate::Method for #name<C> {
            const NAME: &'static str = #wire;
            const READ_ONLY: bool = #read;
            type Output = #output;
            type Wire = #wire_ty;
        }

        bound_request!(#name);
    }
}

fn emit_group_fn(m: &MethodDef) -> TokenStream {
    let name = m.type_name.ident();
    let f = m.fn_name.ident();
    let (args, _) = constructor_parts(&m.params);
    let arg_names: Vec<_> = m
        .params
        .iter()
        .filter(|f| f.required)
        .map(|f| f.rust.ident())
        .collect();
    let doc =
        doc_lines(&format!(
        "{} (`{}`)\n\nReturns [`{}`]: add optional parameters with its setters, then `.await` it.",
        if m.summary.is_empty() { "Calls the method." } else { &m.summary },
        m.wire,
        m.type_name.text
    ));
    let deprecated = m.deprecated.as_ref().map(|d| {
        let note = deprecation_note(d);
        quote!(#[deprecated(note = #note)])
    });
    quote! {
        #doc
        #deprecated
        pub fn #f(&self, #(#args),*) -> #name<&'c crate::Client> {
            #name::with_client(self.client, #(#arg_names),*)
        }
    }
}
