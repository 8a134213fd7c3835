# bash completion for apiwatch (generated: apiwatch --completions bash)
_apiwatch() {
    local cur prev
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    case "$prev" in
        --read|-r) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --interface|-i) COMPREPLY=($(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur")); return ;;
        --replay-speed) COMPREPLY=(); return ;;
        --workers) COMPREPLY=(); return ;;
        --exchanges) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --exchanges-format) COMPREPLY=($(compgen -W "apiwatch eve zeek" -- "$cur")); return ;;
        --alerts) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --endpoints) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --openmetrics-out) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --openapi) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --tls-keylog) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --learning-period) COMPREPLY=(); return ;;
        --memory-limit) COMPREPLY=(); return ;;
        --config|-c) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --ring-size) COMPREPLY=(); return ;;
        --block-timeout) COMPREPLY=(); return ;;
        --user) COMPREPLY=(); return ;;
        --capture-backend) COMPREPLY=($(compgen -W "af-packet libpcap" -- "$cur")); return ;;
        --web.listen-address) COMPREPLY=(); return ;;
        --web.telemetry-path) COMPREPLY=(); return ;;
        --web.config.file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --web.max-connections) COMPREPLY=(); return ;;
        --web.linger) COMPREPLY=(); return ;;
        --log.level) COMPREPLY=($(compgen -W "debug info warn error" -- "$cur")); return ;;
        --log.format) COMPREPLY=($(compgen -W "logfmt json" -- "$cur")); return ;;
        --completions) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")); return ;;
        --publish) COMPREPLY=(); return ;;
        --partitions) COMPREPLY=(); return ;;
        --publish-buffer) COMPREPLY=(); return ;;
        --from) COMPREPLY=(); return ;;
        --shard) COMPREPLY=(); return ;;
        --until-idle) COMPREPLY=(); return ;;
        --max-lateness) COMPREPLY=(); return ;;
        --nats-stream) COMPREPLY=(); return ;;
        --nats-subject) COMPREPLY=(); return ;;
        --nats-creds) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --nats-nkey) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --nats-tls-ca) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --nats-tls-cert) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --nats-tls-key) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    COMPREPLY=($(compgen -W "--read -r --interface -i --replay-speed --workers --exchanges --exchanges-format --alerts --endpoints --openmetrics-out --quiet -q --openapi --tls-keylog --learning-period --memory-limit --config -c --test-config -T --ring-size --block-timeout --user --capture-backend --web.listen-address --web.systemd-socket --web.telemetry-path --web.config.file --web.max-connections --web.linger --log.level --log.format --build-info --generate-man --completions --publish --partitions --publish-buffer --from --shard --until-idle --max-lateness --nats-stream --nats-subject --nats-creds --nats-nkey --nats-tls-ca --nats-tls-cert --nats-tls-key --help -h --version -V" -- "$cur"))
}
complete -F _apiwatch apiwatch
