# bash completion for tether (installed as share/bash-completion/completions/tether).
# The verbs, their options and the host names come from tether itself, through its hidden
# `tether __complete` (src/cli/complete.h), so they always match the installed binary.

# The options of a verb (none: the global ones) that take a value, one a line.
_tether_value_options() {
  "$1" __complete options "${@:2}" 2>/dev/null | while IFS=$'\t' read -r name kind _; do
    [[ $kind == value ]] && printf '%s\n' "$name"
  done
}

_tether() {
  local tether=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]}
  local prev=${COMP_WORDS[COMP_CWORD - 1]}
  local -a config=() verb=()
  local i word nested=0 positional=0 value_options
  COMPREPLY=()

  # The words before the cursor: global options, the verb (agent's has a second word),
  # then the verb's options and its positional words (a host first).
  value_options=$(_tether_value_options "$tether")
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    if ((${#verb[@]} == 0)); then
      if [[ $word == -F ]]; then
        config=(-F "${COMP_WORDS[i + 1]}")
        ((i++))
      elif [[ $word != -* ]]; then
        verb=("$word")
        nested=$("$tether" __complete verbs "$word" 2>/dev/null | wc -l)
        value_options=$(_tether_value_options "$tether" "$word")
      fi
    elif ((nested > 0 && ${#verb[@]} == 1)) && [[ $word != -* ]]; then
      verb+=("$word")
      nested=0
      value_options=$(_tether_value_options "$tether" "${verb[@]}")
    elif [[ $word == -* ]]; then
      grep -qxF -- "$word" <<<"$value_options" && ((i++))
    else
      ((positional++))
    fi
  done

  # The value of an option.
  if [[ $prev == -* ]] && grep -qxF -- "$prev" <<<"$value_options"; then
    case $prev in
      -F | -i) mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
      --shell) mapfile -t COMPREPLY < <(compgen -W "sh bash zsh fish" -- "$cur") ;;
      --laptop-network) mapfile -t COMPREPLY < <(compgen -W "public private all" -- "$cur") ;;
      -J) mapfile -t COMPREPLY < <(compgen -W "$("$tether" "${config[@]}" __complete hosts 2>/dev/null)" -- "$cur") ;;
    esac
    return 0
  fi

  local candidates
  if [[ $cur == -* ]]; then
    candidates=$("$tether" __complete options "${verb[@]}" 2>/dev/null | cut -f1)
  elif ((${#verb[@]} == 0 || nested > 0)); then
    candidates=$("$tether" __complete verbs "${verb[@]}" 2>/dev/null | cut -f1)
  elif ((positional == 0)) && [[ ${verb[0]} != ls && ${verb[0]} != gpus ]]; then
    candidates=$("$tether" "${config[@]}" __complete hosts 2>/dev/null)
  else
    # The command after exec/ssh/run HOST, or nothing: readline's file names (-o default).
    return 0
  fi
  mapfile -t COMPREPLY < <(compgen -W "$candidates" -- "$cur")
  return 0
}

complete -o default -F _tether tether
