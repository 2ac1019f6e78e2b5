// Shell completion scripts, generated from the program's own command tree: every command, option, and
// the values an option or argument accepts (its choices; files for a path). Adding a command or a flag
// changes the completion with nothing else to edit. Pure: takes the program, returns the script.
import type { Command, Option } from 'commander';

export const SHELLS = ['bash', 'zsh'] as const;
export type Shell = (typeof SHELLS)[number];

interface OptionModel {
  flags: string[];
  description: string;
  /** How its value completes; undefined for a flag that takes no value. */
  value?: { kind: 'choices'; values: string[] } | { kind: 'file' } | { kind: 'dir' } | { kind: 'text' };
}

interface CommandNode {
  /** Command names from the program down, space-separated; "" for the program itself. */
  path: string;
  commands: Array<{ name: string; description: string }>;
  options: OptionModel[];
  /** Values its positional arguments take (their choices). */
  argumentValues: string[];
}

/** Words that go into a script unquoted must be plain. */
const WORD = /^[A-Za-z0-9][A-Za-z0-9._:/@-]*$|^-{1,2}[A-Za-z0-9][A-Za-z0-9-]*$/;

function valueOf(option: Option): OptionModel['value'] {
  if (!option.required && !option.optional) return undefined;
  if (option.argChoices && option.argChoices.length > 0) return { kind: 'choices', values: option.argChoices.filter((v) => WORD.test(v)) };
  if (/<dir>/.test(option.flags)) return { kind: 'dir' };
  if (/<(path|file)>|@file/.test(option.flags)) return { kind: 'file' };
  return { kind: 'text' };
}

export function completionModel(program: Command): CommandNode[] {
  const nodes: CommandNode[] = [];
  const visit = (command: Command, path: string[]) => {
    const help = command.createHelp();
    const children = help.visibleCommands(command);
    nodes.push({
      path: path.join(' '),
      commands: children.map((c) => ({ name: c.name(), description: help.subcommandDescription(c) })).filter((c) => WORD.test(c.name)),
      options: help
        .visibleOptions(command)
        .map((o) => ({
          flags: [o.short, o.long].filter((f): f is string => typeof f === 'string' && WORD.test(f)),
          description: help.optionDescription(o),
          value: valueOf(o),
        }))
        .filter((o) => o.flags.length > 0),
      argumentValues: command.registeredArguments.flatMap((a) => (a.argChoices ?? []).filter((v) => WORD.test(v))),
    });
    for (const child of children) {
      // The implicit `help [command]` completes the names of its sibling commands.
      if (child.name() === 'help' && !command.commands.includes(child)) {
        const siblings = children.map((c) => c.name()).filter((n) => n !== 'help' && WORD.test(n));
        nodes.push({ path: [...path, 'help'].join(' '), commands: [], options: [], argumentValues: siblings });
        continue;
      }
      visit(child, [...path, child.name()]);
    }
  };
  visit(program, []);
  return nodes;
}

/** Single-quoted for both shells. */
function quote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function shellName(program: Command): string {
  return program.name().replace(/[^A-Za-z0-9]/g, '_');
}

/** The helper functions both scripts share: what each command path offers, and which options take a value. */
function helpers(prefix: string, nodes: readonly CommandNode[]): string {
  const cases = (body: (n: CommandNode) => string | undefined) =>
    nodes
      .map((n) => {
        const text = body(n);
        return text === undefined ? undefined : `    ${quote(n.path)}) ${text} ;;`;
      })
      .filter((l): l is string => l !== undefined)
      .join('\n');
  const valueCases = (pick: (o: OptionModel) => string | undefined) =>
    nodes
      .flatMap((n) =>
        n.options.flatMap((o) => {
          const text = pick(o);
          return text === undefined ? [] : o.flags.map((f) => `    ${quote(`${n.path}:${f}`)}) ${text} ;;`);
        }),
      )
      .join('\n');
  return `${prefix}_commands() {
  case "$1" in
${cases((n) => (n.commands.length > 0 ? `echo ${quote(n.commands.map((c) => c.name).join(' '))}` : undefined))}
  esac
}

${prefix}_arguments() {
  case "$1" in
${cases((n) => (n.argumentValues.length > 0 ? `echo ${quote(n.argumentValues.join(' '))}` : undefined))}
  esac
}

${prefix}_options() {
  case "$1" in
${cases((n) => `echo ${quote(n.options.flatMap((o) => o.flags).join(' '))}`)}
  esac
}

# Prints how the value of option $2 of command path $1 completes (choices:..., file, dir or text); fails when it takes none.
${prefix}_value() {
  case "$1:$2" in
${valueCases((o) => (o.value === undefined ? undefined : `echo ${quote(o.value.kind === 'choices' ? `choices:${o.value.values.join(' ')}` : o.value.kind)}`))}
    *) return 1 ;;
  esac
}

# The command path the words before the cursor name (options and their values skipped).
${prefix}_path() {
  local cmdpath="" skip="" word subs
  for word in "$@"; do
    if [ -n "$skip" ]; then skip=""; continue; fi
    if ${prefix}_value "$cmdpath" "$word" >/dev/null; then skip=1; continue; fi
    case "$word" in -*) continue ;; esac
    subs=" $(${prefix}_commands "$cmdpath") "
    case "$subs" in *" $word "*) cmdpath="\${cmdpath:+$cmdpath }$word" ;; esac
  done
  echo "$cmdpath"
}`;
}

export function bashCompletion(program: Command): string {
  const name = program.name();
  const prefix = `__${shellName(program)}`;
  return `# bash completion for ${name}, generated by \`${name} completion bash\`.
# Load it now:      source <(${name} completion bash)
# Or for good:      ${name} completion bash > /etc/bash_completion.d/${name}
#                   (or ~/.local/share/bash-completion/completions/${name})

${helpers(prefix, completionModel(program))}

_${shellName(program)}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local cmdpath value
  cmdpath="$(${prefix}_path "\${COMP_WORDS[@]:1:COMP_CWORD-1}")"
  COMPREPLY=()
  if [ "$COMP_CWORD" -gt 1 ] && value="$(${prefix}_value "$cmdpath" "$prev")"; then
    case "$value" in
      choices:*) COMPREPLY=($(compgen -W "\${value#choices:}" -- "$cur")) ;;
      file) COMPREPLY=($(compgen -f -- "$cur")) ;;
      dir) COMPREPLY=($(compgen -d -- "$cur")) ;;
    esac
    return 0
  fi
  case "$cur" in
    -*) COMPREPLY=($(compgen -W "$(${prefix}_options "$cmdpath")" -- "$cur")) ;;
    *) COMPREPLY=($(compgen -W "$(${prefix}_commands "$cmdpath") $(${prefix}_arguments "$cmdpath")" -- "$cur")) ;;
  esac
  return 0
}

complete -F _${shellName(program)} ${name}
`;
}

export function zshCompletion(program: Command): string {
  const name = program.name();
  const prefix = `__${shellName(program)}`;
  const nodes = completionModel(program);
  const described = (items: Array<{ name: string; description: string }>) =>
    items.map((i) => quote(`${i.name.replace(/:/g, '\\:')}:${i.description.replace(/\s+/g, ' ')}`)).join(' ');
  const commandCases = nodes
    .filter((n) => n.commands.length > 0)
    .map((n) => `    ${quote(n.path)}) items=(${described(n.commands)}) ;;`)
    .join('\n');
  const optionCases = nodes
    .map(
      (n) =>
        `    ${quote(n.path)}) items=(${described(n.options.flatMap((o) => o.flags.map((f) => ({ name: f, description: o.description }))))}) ;;`,
    )
    .join('\n');
  return `#compdef ${name}
# zsh completion for ${name}, generated by \`${name} completion zsh\`.
# Load it now:      source <(${name} completion zsh)
# Or for good:      ${name} completion zsh > "\${fpath[1]}/_${name}"   (then start a new shell)

${helpers(prefix, nodes)}

${prefix}_described_commands() {
  local -a items
  case "$1" in
${commandCases}
  esac
  (( \${#items} )) && _describe -t commands 'command' items
}

${prefix}_described_options() {
  local -a items
  case "$1" in
${optionCases}
  esac
  (( \${#items} )) && _describe -t options 'option' items
}

_${shellName(program)}() {
  local cmdpath value prev="\${words[CURRENT-1]}"
  cmdpath="$(${prefix}_path "\${(@)words[2,CURRENT-1]}")"
  if (( CURRENT > 2 )) && value="$(${prefix}_value "$cmdpath" "$prev")"; then
    case "$value" in
      choices:*) compadd -- \${=value#choices:} ;;
      file) _files ;;
      dir) _files -/ ;;
      *) _message 'a value' ;;
    esac
    return
  fi
  if [[ "\${words[CURRENT]}" == -* ]]; then
    ${prefix}_described_options "$cmdpath"
    return
  fi
  local arguments="$(${prefix}_arguments "$cmdpath")"
  [[ -n "$arguments" ]] && compadd -- \${=arguments}
  ${prefix}_described_commands "$cmdpath"
}

if [[ "\${zsh_eval_context[-1]}" == loadautofunc ]]; then
  _${shellName(program)} "$@"
else
  compdef _${shellName(program)} ${name}
fi
`;
}

export function completionScript(program: Command, shell: Shell): string {
  return shell === 'bash' ? bashCompletion(program) : zshCompletion(program);
}
