# bash completion for lpk-proxy and kubectl-lpk                        -*- shell-script -*-
# Installed as /usr/share/bash-completion/completions/lpk-proxy. The flag lists below are checked
# against each command's --help by tests/package/test_completions.py, so they cannot drift from
# what lpk-proxy accepts. Plain bash (no bash-completion helpers), so it works without that package.

_lpk_proxy_commands="connect status env diagnostics restore routes doctor run resolver ide init config"

# The flags of each command, as its --help lists them.
_lpk_proxy_flags() {
  case $1 in
    connect) echo "--service -n --kubeconfig --context --local-port --container --agent-image
                   --keep-image --route-header --route --env-file --also-namespace --run --env --skip-file --config
                   --no-config --dns --pool --zone --resolv-conf --resolver --file-limit --timeout
                   --dead-link-timeout --resume-grace --secret-file --orphan-timeout --log-level
                   --log-format --output --json" ;;
    status | env | diagnostics) echo "--session --output --json" ;;
    restore) echo "--all -A --force -n --kubeconfig --context --timeout" ;;
    routes) echo "-n -A --kubeconfig --context --output --json" ;;
    doctor) echo "--service -n --kubeconfig --context --container --agent-image --pool --dns
                  --resolver --output --json" ;;
    run) echo "--agent --agent-pod --kubeconfig --context --map --map-file --pool --local-port
               --dns --namespace --zone --resolv-conf --secret-file --dead-link-timeout
               --resume-grace --log-level --log-format" ;;
    resolver) echo "--dry-run --force --zone --namespace --address --mode --resolv-conf --backup" ;;
    ide) echo "--service -n --kubeconfig --context --dir --debugger --program" ;;
    init) echo "--service -n --kubeconfig --context --file --force" ;;
  esac
}

_lpk_proxy() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  COMPREPLY=()
  # After `--` comes the command connect runs: complete it as a command line of its own.
  local i
  for ((i = 1; i < COMP_CWORD; i++)); do
    if [[ ${COMP_WORDS[i]} == -- ]]; then
      COMPREPLY=($(compgen -c -- "$cur"))
      return
    fi
  done
  if ((COMP_CWORD == 1)); then
    COMPREPLY=($(compgen -W "$_lpk_proxy_commands --help --version" -- "$cur"))
    return
  fi
  local command=${COMP_WORDS[1]}
  case $prev in
    --kubeconfig | --env-file | --secret-file | --map-file | --resolv-conf | --backup | --program | \
    --config | --file)
      COMPREPLY=($(compgen -f -- "$cur"))
      return ;;
    --dir)
      COMPREPLY=($(compgen -d -- "$cur"))
      return ;;
    --log-level)
      COMPREPLY=($(compgen -W "trace debug info warn error" -- "$cur"))
      return ;;
    --mode)
      COMPREPLY=($(compgen -W "auto resolved resolv.conf" -- "$cur"))
      return ;;
    --log-format | --output)
      COMPREPLY=($(compgen -W "text json" -- "$cur"))
      return ;;
  esac
  if ((COMP_CWORD == 2)); then
    case $command in
      resolver) COMPREPLY=($(compgen -W "install uninstall status" -- "$cur")); return ;;
      ide) COMPREPLY=($(compgen -W "vscode" -- "$cur")); return ;;
      config) COMPREPLY=($(compgen -W "validate" -- "$cur")); return ;;
    esac
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_lpk_proxy_flags "$command")" -- "$cur"))
  fi
}

complete -F _lpk_proxy lpk-proxy kubectl-lpk
