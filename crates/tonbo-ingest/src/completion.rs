//! What the front door's bash completion adds to clap's: after `--` the words are tonbo-post's,
//! so tonbo-post's own completion takes over there (clap knows nothing of tonbo-post's flags).

use std::io::{self, Write};

/// Runs after clap's completion function is defined and registered, and registers itself
/// instead, calling clap's for the words before `--`.
const BASH_HAND_OVER: &str = r#"
# After --, the words are tonbo-post's: its own completion takes them.
_tonbo_ingest_flags=$(complete -p tonbo-ingest | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
_tonbo_ingest_door() {
    local cur="${COMP_WORDS[COMP_CWORD]}" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        if [ "${COMP_WORDS[i]}" = -- ]; then
            local spec fn
            spec=$(complete -p tonbo-post 2>/dev/null)
            if [ -z "$spec" ]; then
                # bash-completion loads a command's completion on its first use.
                if declare -F _comp_load >/dev/null; then _comp_load tonbo-post 2>/dev/null
                elif declare -F _completion_loader >/dev/null; then _completion_loader tonbo-post 2>/dev/null
                fi
                spec=$(complete -p tonbo-post 2>/dev/null)
            fi
            fn=$(sed -n 's/.* -F \([^ ]*\) .*/\1/p' <<<"$spec")
            if [ -n "$fn" ]; then
                COMP_WORDS=(tonbo-post "${COMP_WORDS[@]:i+1}"); COMP_CWORD=$((COMP_CWORD - i))
                "$fn" tonbo-post "$cur" "${COMP_WORDS[COMP_CWORD-1]}"
            else
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            fi
            return
        fi
    done
    "$_tonbo_ingest_flags" "$@"
}
complete -F _tonbo_ingest_door -o bashdefault -o default tonbo-ingest
"#;

/// For `tonbo_core::manual::answer_generate`: the hand-over, after clap's bash completion.
pub fn hand_over(kind: &str, out: &mut dyn Write) -> io::Result<()> {
    match kind {
        "complete-bash" => out.write_all(BASH_HAND_OVER.as_bytes()),
        _ => Ok(()),
    }
}
