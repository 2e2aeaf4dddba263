//! `make install-files` (what `make install` does after its release build) into a temporary
//! prefix, from this test build's binaries: every stage and the front door, their man pages
//! (rendered by groff without a warning but for lines it cannot fill evenly, with the sections a
//! user looks for), and completions that bash really completes with (zsh and fish are not on
//! this machine: their files are checked for their shell's own markers).

use std::path::{Path, PathBuf};
use std::process::Command;

use tonbo_core::manual::PIPELINE;
use tonbo_ingest::sources::SOURCES;
use tonbo_testkit::{bin, workspace_root};

/// Every binary `make install` installs: the pipeline's and each source's reader.
fn binaries() -> Vec<&'static str> {
    let readers = SOURCES.iter().map(|s| s.reader);
    PIPELINE.iter().copied().chain(readers).collect()
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

fn install(prefix: &Path) {
    let build_dir = bin("tonbo-post").parent().unwrap().to_path_buf();
    let out = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(workspace_root())
        .arg("install-files")
        .arg(format!("BUILD_DIR={}", build_dir.display()))
        .arg(format!("PREFIX={}", prefix.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "make install-files: {out:?}");
}

/// What bash completes `words` (the last one being completed) to, with the completion file
/// of `cmd` (and any others in `also`) sourced.
fn bash_complete(files: &[PathBuf], words: &[&str]) -> Vec<String> {
    let sources: String = files
        .iter()
        .map(|f| format!("source '{}'; ", f.display()))
        .collect();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        r#"{sources}
COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE="${{COMP_WORDS[*]}}"; COMP_POINT=${{#COMP_LINE}}
spec=$(complete -p "${{COMP_WORDS[0]}}") || exit 3
fn=$(printf '%s\n' "$spec" | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
"$fn" "${{COMP_WORDS[0]}}" "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
        words = quoted.join(" ")
    );
    let out = Command::new("bash")
        .arg("--norc")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}\n{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn install_puts_binaries_man_pages_and_completions_in_place() {
    if !have("make") {
        println!("skipped: no make");
        return;
    }
    let prefix = tempfile::tempdir().unwrap();
    let p = prefix.path();
    install(p);
    let man_dir = p.join("share/man/man1");
    let bash_dir = p.join("share/bash-completion/completions");
    for s in binaries() {
        let out = Command::new(p.join("bin").join(s))
            .arg("--version")
            .output()
            .unwrap();
        assert!(out.status.success(), "{s} --version: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with(&format!("{s} ")),
            "{out:?}"
        );

        let page = man_dir.join(format!("{s}.1"));
        let text = std::fs::read_to_string(&page).unwrap();
        assert!(text.contains(&format!(".TH {s} 1")), "{s}: {text}");
        for section in [
            "NAME",
            "SYNOPSIS",
            "OPTIONS",
            "EXAMPLES",
            "SIGNALS",
            "\"EXIT STATUS\"",
            "\"SEE ALSO\"",
        ] {
            assert!(
                text.contains(&format!("\n.SH {section}\n")),
                "{s}: no {section}"
            );
        }
        if have("groff") {
            let out = Command::new("groff")
                .args(["-man", "-Tutf8", "-ww", "-Wbreak", "-z"])
                .arg(&page)
                .output()
                .unwrap();
            assert!(out.status.success(), "{s}: {out:?}");
            assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{s}: groff warns");
        }

        let zsh =
            std::fs::read_to_string(p.join(format!("share/zsh/site-functions/_{s}"))).unwrap();
        assert!(zsh.starts_with(&format!("#compdef {s}")), "{s}: {zsh}");
        let fish =
            std::fs::read_to_string(p.join(format!("share/fish/vendor_completions.d/{s}.fish")))
                .unwrap();
        assert!(fish.contains(&format!("complete -c {s} ")), "{s}: {fish}");
    }

    if !have("bash") {
        return;
    }
    // Each stage completes its own long flags.
    let flag_of = [
        ("claude-read", "--fol", "--follow"),
        ("codex-read", "--modified", "--modified-after"),
        ("opencode-read", "--prog", "--progress"),
        ("tonbo-map", "--no-", "--no-redact"),
        ("tonbo-batch", "--max-b", "--max-bytes"),
        ("tonbo-post", "--conc", "--concurrency"),
    ];
    for (s, partial, full) in flag_of {
        let got = bash_complete(&[bash_dir.join(s)], &[s, partial]);
        assert_eq!(got, vec![full.to_owned()], "{s} {partial}");
    }
    // The front door: its options, the sources after --from, and tonbo-post's flags after --.
    let door = bash_dir.join("tonbo-ingest");
    let post = bash_dir.join("tonbo-post");
    assert_eq!(
        bash_complete(std::slice::from_ref(&door), &["tonbo-ingest", "--since"]),
        vec!["--since-last-run"]
    );
    assert_eq!(
        bash_complete(
            std::slice::from_ref(&door),
            &["tonbo-ingest", "--from", "c"]
        ),
        vec!["claude-code", "codex-cli", "cline", "copilot-cli", "cursor"]
    );
    assert_eq!(
        bash_complete(
            &[door, post],
            &["tonbo-ingest", "--from", "all", "--", "--dry"]
        ),
        vec!["--dry-run"]
    );
}

#[test]
fn generate_refuses_what_it_does_not_know() {
    for s in binaries() {
        let out = Command::new(bin(s))
            .args(["--generate", "complete-tcsh"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{s}: {out:?}");
        assert!(out.stdout.is_empty(), "{s}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("complete-bash"), "{s}: {err}");
    }
}
