# bash completion for svcctl (installed as
# /usr/share/bash-completion/completions/svcctl by the svclb package).
# Completes the subcommands, their flags and flag values (cli/app.cpp),
# resource names (model/kinds.cpp), files after -f, and object names, which
# it asks the running svclbd for (`svcctl get KIND -o name`; nothing when the
# daemon does not answer within 2 s). Tested by tests/cli/completion.sh.

_svcctl_commands="apply get describe delete patch label annotate stats status trace monitor version api-resources"
_svcctl_resources="services svc endpoints ep endpointslices ipaddresspools l2advertisements"

# _svcctl_flags COMMAND: the flags COMMAND accepts (global ones for "").
_svcctl_flags() {
    case $1 in
        "") echo "--socket --request-timeout --help" ;;
        apply) echo "-f --filename --strict --dry-run --help" ;;
        get) echo "-n --namespace -A --all-namespaces -o --output -l --selector --show-labels --no-headers --sort-by -w --watch --help" ;;
        describe) echo "-n --namespace -l --selector --help" ;;
        delete) echo "-f --filename --strict -n --namespace --ignore-not-found -l --selector --all --dry-run --help" ;;
        patch) echo "-n --namespace -p --patch --patch-file --type --dry-run --help" ;;
        label | annotate) echo "-n --namespace --overwrite -l --selector --all --dry-run --help" ;;
        stats | status) echo "-o --output --help" ;;
        trace) echo "-p --protocol --from -o --output --help" ;;
        monitor) echo "--type -o --output --help" ;;
        version) echo "--client --help" ;;
        api-resources) echo "--help" ;;
    esac
}

# _svcctl_names KIND: object names of KIND in the namespace of the command
# line (-n/--namespace, or all with -A), from the daemon of --socket.
_svcctl_names() {
    local kind=$1 args=() i w
    for ((i = 1; i < ${#_svcctl_words[@]}; i++)); do
        w=${_svcctl_words[i]}
        case $w in
            --socket | -n | --namespace) args+=("$w" "${_svcctl_words[i + 1]}") ;;
            --socket=* | --namespace=*) args+=("$w") ;;
        esac
    done
    # `svcctl [--socket S] get KIND [-n NS] -o name`: lines "service/web".
    local sock=() rest=()
    for ((i = 0; i < ${#args[@]}; i++)); do
        case ${args[i]} in
            --socket) sock+=(--socket "${args[i + 1]}"); ((i++)) ;;
            --socket=*) sock+=("${args[i]}") ;;
            *) rest+=("${args[i]}") ;;
        esac
    done
    timeout 3 "${_svcctl_bin:-svcctl}" "${sock[@]}" --request-timeout=2s get "$kind" "${rest[@]}" \
        -o name 2>/dev/null | sed 's|^[^/]*/||'
}

_svcctl() {
    local cur prev cmd="" i w
    COMPREPLY=()
    # bash splits "--flag=value" at "=" (COMP_WORDBREAKS): join it back.
    local words=() cword=0
    for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
        w=${COMP_WORDS[i]}
        if ((i > 0)) && [[ $w == "=" || ${COMP_WORDS[i - 1]} == "=" ]] && ((${#words[@]} > 0)) &&
            [[ ${words[-1]} == --* ]]; then
            words[-1]+=$w
        else
            words+=("$w")
        fi
        ((i == COMP_CWORD)) && cword=$((${#words[@]} - 1))
    done
    _svcctl_words=("${words[@]}")
    _svcctl_bin=${words[0]}
    [[ $_svcctl_bin == */* || -z $_svcctl_bin ]] || _svcctl_bin=$(type -P "$_svcctl_bin" || echo svcctl)
    cur=${words[cword]}
    prev=""
    ((cword > 0)) && prev=${words[cword - 1]}

    # The subcommand and the positional arguments before the cursor.
    local pos=()
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        case $w in
            --socket | --request-timeout | -n | --namespace | -o | --output | -f | --filename | -l | \
                --selector | -p | --protocol | --from | --type | --sort-by)
                ((i++)) ;;
            -*) ;;
            *) if [[ -z $cmd ]]; then cmd=$w; else pos+=("$w"); fi ;;
        esac
    done

    # A flag's value ("--output=js" as well as "--output js").
    local flag="" val=$cur
    if [[ $cur == --*=* ]]; then
        flag=${cur%%=*}
        val=${cur#*=}
    elif [[ $prev == -* && $prev != *=* ]]; then
        flag=$prev
    fi
    local values="" files=0 taken=0
    case $flag in
        -o | --output)
            taken=1
            if [[ $cmd == get ]]; then values="wide json yaml name jsonpath= custom-columns="; else values="json"; fi ;;
        -f | --filename | --socket) taken=1 files=1 ;;
        --request-timeout) taken=1 values="5s 30s 1m 2m" ;;
        -n | --namespace) taken=1 ;;  # namespaces: svcctl cannot list them
        -p | --protocol | --patch)
            taken=1
            [[ $cmd == patch ]] || values="TCP UDP" ;;  # patch's -p: typed
        --patch-file) taken=1 files=1 ;;
        --from) taken=1 values="outside node" ;;
        --type)
            taken=1
            if [[ $cmd == patch ]]; then values="strategic merge json"; else values="drop reject"; fi ;;
        -l | --selector | --sort-by) taken=1 ;;  # typed
    esac
    if ((taken)); then
        if ((files)); then
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$val")
        else
            mapfile -t COMPREPLY < <(compgen -W "$values" -- "$val")
        fi
        if [[ $cur == --*=* ]]; then
            # The "--flag=" part is already on the line when "=" is a word break.
            [[ $COMP_WORDBREAKS == *=* ]] || COMPREPLY=("${COMPREPLY[@]/#/$flag=}")
        fi
        return 0
    fi

    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_svcctl_flags "$cmd")" -- "$cur")
        return 0
    fi
    if [[ -z $cmd ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$_svcctl_commands" -- "$cur")
        return 0
    fi
    case $cmd in
        get | describe | delete | patch | label | annotate)
            if ((${#pos[@]} == 0)); then
                if [[ $cur == */* ]]; then
                    # RESOURCE/NAME
                    local kind=${cur%%/*} n
                    mapfile -t COMPREPLY < <(for n in $(_svcctl_names "$kind"); do
                        echo "$kind/$n"; done | compgen -W "$(cat)" -- "$cur")
                else
                    mapfile -t COMPREPLY < <(compgen -W "$_svcctl_resources" -- "$cur")
                fi
            elif [[ ${pos[0]} != */* ]]; then
                # Names not yet on the line.
                local names n have
                names=$(_svcctl_names "${pos[0]}")
                for n in ${names}; do
                    have=0
                    for w in "${pos[@]:1}"; do [[ $w == "$n" ]] && have=1; done
                    ((have)) || [[ $n != "$cur"* ]] || COMPREPLY+=("$n")
                done
            fi
            ;;
    esac
    return 0
}
complete -F _svcctl svcctl
