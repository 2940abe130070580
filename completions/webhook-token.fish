# fish completion for webhook-token(1). Its commands and options are checked against
# `webhook-token --help` by Tests/WebhookTokenIntegrationTests/CompletionTests.swift.
set -l commands status refresh watch
complete -c webhook-token -f
complete -c webhook-token -n "not __fish_seen_subcommand_from $commands" -a status -d "print the daemon's status"
complete -c webhook-token -n "not __fish_seen_subcommand_from $commands" -a refresh -d "renew the token now and print it"
complete -c webhook-token -n "not __fish_seen_subcommand_from $commands" -a watch -d "print each new token as it is served"
complete -c webhook-token -l header -d 'print "Authorization: Bearer <token>"'
complete -c webhook-token -l json -d "print the daemon's JSON answer"
complete -c webhook-token -n "__fish_seen_subcommand_from status" -s q -l quiet -d "print nothing; exit 0 only if a token can be served"
complete -c webhook-token -l profile -x -d "the profile whose token to use"
complete -c webhook-token -l socket -r -F -d "the daemon's socket"
complete -c webhook-token -l timeout -x -d "give up after this many seconds"
complete -c webhook-token -s h -l help -d "show help"
complete -c webhook-token -l version -d "show the version"
