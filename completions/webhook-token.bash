# bash completion for webhook-token(1). Its commands and options are checked against
# `webhook-token --help` by Tests/WebhookTokenIntegrationTests/CompletionTests.swift.
_webhook_token() {
    local cur prev word command=""
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    case $prev in
    --profile | --timeout)
        COMPREPLY=()
        return
        ;;
    --socket)
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
        return
        ;;
    esac
    for word in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
        case $word in status | refresh | watch) command=$word ;; esac
    done
    local options="--header --json --profile --socket --timeout -h --help --version"
    case $command in
    status) options="--json -q --quiet --profile --socket --timeout" ;;
    refresh | watch) options="--header --json --profile --socket --timeout" ;;
    esac
    if [[ $cur == -* || -n $command ]]; then
        COMPREPLY=($(compgen -W "$options" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "status refresh watch $options" -- "$cur"))
    fi
}
complete -F _webhook_token webhook-token
