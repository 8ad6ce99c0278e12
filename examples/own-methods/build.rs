//! Generates typed requests from `my_methods.toml` into `$OUT_DIR/bitrix24_methods.rs`.
fn main() {
    bitrix24_codegen::Build::new("my_methods.toml")
        .accessor_trait("MyMethods")
        .run();
}
