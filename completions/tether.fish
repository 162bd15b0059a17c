# fish completion for tether (installed as share/fish/vendor_completions.d/tether.fish).
# The verbs, their options and the host names come from tether itself, through its hidden
# `tether __complete` (src/cli/complete.h), so they always match the installed binary.

# The options of a verb (none: the global ones) that take a value.
function __tether_value_options
    $argv[1] __complete options $argv[2..-1] 2>/dev/null | string match -r '^[^\t]+(?=\tvalue\t)'
end

function __tether_candidates
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l tether $tokens[1]
    set -l config
    set -l verb
    set -l nested 0
    set -l positional 0
    set -l values (__tether_value_options $tether)

    # The words before the cursor: global options, the verb (agent's has a second word),
    # then the verb's options and its positional words (a host first).
    set -l i 2
    while test $i -le (count $tokens)
        set -l word $tokens[$i]
        if test (count $verb) -eq 0
            if test "$word" = -F
                set i (math $i + 1)
                set config -F $tokens[$i]
            else if not string match -q -- '-*' $word
                set verb $word
                set nested (count ($tether __complete verbs $word 2>/dev/null))
                set values (__tether_value_options $tether $word)
            end
        else if test $nested -gt 0 -a (count $verb) -eq 1; and not string match -q -- '-*' $word
            set -a verb $word
            set nested 0
            set values (__tether_value_options $tether $verb)
        else if string match -q -- '-*' $word
            contains -- $word $values; and set i (math $i + 1)
        else
            set positional (math $positional + 1)
        end
        set i (math $i + 1)
    end

    # The value of an option.
    set -l prev $tokens[-1]
    if string match -q -- '-*' $prev; and contains -- $prev $values
        switch $prev
            case -F -i
                __fish_complete_path $cur
            case --shell
                printf '%s\n' sh bash zsh fish
            case --laptop-network
                printf '%s\n' public private all
            case -J
                $tether $config __complete hosts 2>/dev/null
        end
        return
    end

    if string match -q -- '-*' $cur
        $tether __complete options $verb 2>/dev/null | string replace -r '\t[^\t]*\t' \t
    else if test (count $verb) -eq 0 -o $nested -gt 0
        $tether __complete verbs $verb 2>/dev/null
    else if test $positional -eq 0 -a "$verb[1]" != ls -a "$verb[1]" != gpus
        $tether $config __complete hosts 2>/dev/null
    else
        # The command after exec/ssh/run HOST, or nothing: file names.
        __fish_complete_path $cur
    end
end

complete -c tether -f -a '(__tether_candidates)'
