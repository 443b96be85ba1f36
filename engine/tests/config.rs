//! The boot configuration parser (`config.rs`, `llm.cfg`): edge cases found by testing it as a
//! user edits the file. Each finding's test names it.

use llm_engine::config::BootConfig;

/// Finding (issue 13): an llm.cfg saved with a UTF-8 BOM (as Notepad does) was refused.

#[test]
fn llm_cfg_with_a_utf8_bom_is_read() {
    let c = BootConfig::parse("\u{feff}model = \\m.bin\nseed = 3\n").unwrap();
    assert_eq!((c.model_path.as_str(), c.chat.seed), ("\\m.bin", 3));
    // A BOM before a comment line, as Notepad writes it.
    assert_eq!(BootConfig::parse("\u{feff}# settings\nseed = 4\n").unwrap().chat.seed, 4);
}

/// Finding (issue 13): `model =` with no path gave an unclear error.

#[test]
fn an_empty_model_path_names_the_problem() {
    for text in ["model =", "model = \n", "model =   # nothing\n"] {
        let e = BootConfig::parse(text).err().unwrap_or_else(|| panic!("{text:?} accepted"));
        assert!(e.message.contains("model") && e.message.contains("empty"), "{text:?}: {e}");
    }
}

/// Finding (issue 13): an error about a long line quoted all of it.

#[test]
fn config_errors_quote_at_most_80_characters() {
    let long = "é".repeat(500);
    for text in [format!("{long}\n"), format!("seed = {long}\n"), format!("{long} = 1\n"), format!("template = {long}\n")] {
        let e = BootConfig::parse(&text).unwrap_err();
        let shown = e.to_string();
        assert!(shown.chars().count() < 200, "{} chars: {shown}", shown.chars().count());
        assert!(shown.contains("..."), "{shown}");
    }
    // Short values are quoted whole.
    assert!(BootConfig::parse("seed = abc").unwrap_err().to_string().contains("'abc'"));
}

/// `kernels =` picks a kernel set by its registry name (to reproduce a run, or to compare two
/// sets under the same emulated CPU); anything else names the choices.
#[test]
fn kernels_key_takes_auto_or_a_registry_name() {
    assert_eq!(BootConfig::parse("seed = 1\n").unwrap().kernels, "auto");
    for name in llm_engine::kernels::registry().map(|k| k.name) {
        assert_eq!(BootConfig::parse(&format!("kernels = {name}  # a set\n")).unwrap().kernels, name);
    }
    let e = BootConfig::parse("seed = 1\nkernels = gpu\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("'gpu' is not auto or one of portable, portable-q8, sse2"), "{e}");
}
