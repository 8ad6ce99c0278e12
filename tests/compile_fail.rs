//! The typing is the point of the generated API: a missing required parameter, a wrong
//! parameter type and an unknown method must not compile. Expected compiler output lives next
//! to each case in `tests/ui/*.stderr` (update with `TRYBUILD=overwrite`).

#[test]
fn typing_mistakes_do_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
