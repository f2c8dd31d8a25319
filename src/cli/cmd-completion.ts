import type { Command, Option } from 'commander';
import { action } from './action.js';

/**
 * Shell completion generated from the commander definitions themselves, so a new command or
 * flag is completed without anyone editing a script: `snapfill completion bash`.
 */

/** The flags of a command that are shown in its help (hidden ones stay hidden here too). */
export function visibleOptions(cmd: Command): Option[] {
  return cmd.options.filter((o) => !o.hidden);
}

export function visibleCommands(cmd: Command): Command[] {
  return cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
}

function flagsOf(cmd: Command): string[] {
  const out: string[] = [];
  for (const o of visibleOptions(cmd)) {
    if (o.long) out.push(o.long);
    if (o.short) out.push(o.short);
  }
  return [...out, '--help'];
}

/** Flags that take a value: the word after them is that value, not a command or path. */
function valueFlags(cmd: Command): string[] {
  return visibleOptions(cmd)
    .filter((o) => o.required || o.optional)
    .flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f)));
}

const word = (s: string) => s.replace(/[^A-Za-z0-9_@%+=:,./-]/g, '');

/** One `case` arm per command (and per sub-command: "schedule install"). */
function bashCases(program: Command): string[] {
  const arms: string[] = [];
  for (const c of visibleCommands(program)) {
    const names = [c.name(), ...c.aliases()].map(word).join('|');
    const subs = visibleCommands(c).map((s) => word(s.name()));
    arms.push(
      `    ${names}) subs="${subs.join(' ')}"; opts="${flagsOf(c).map(word).join(' ')}"; vals="${valueFlags(c).map(word).join(' ')}" ;;`,
    );
  }
  return arms;
}

export function bashCompletion(program: Command): string {
  const name = word(program.name());
  const commands = visibleCommands(program).flatMap((c) => [c.name(), ...c.aliases()]);
  return `# bash completion for ${name}, generated from its command definitions by \`${name} completion bash\`.
# Install: ${name} completion bash > /etc/bash_completion.d/${name}   (or: source <(${name} completion bash))
_${name}_complete() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]}
  local global_vals="${valueFlags(program).map(word).join(' ')}"
  local cmd="" i w skip=0
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    if ((skip)); then skip=0; continue; fi
    case " $global_vals " in *" $w "*) skip=1; continue ;; esac
    case "$w" in -*) continue ;; esac
    cmd=$w; break
  done
  if [[ -z $cmd ]]; then
    if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "${flagsOf(program).map(word).join(' ')}" -- "$cur"))
    else COMPREPLY=($(compgen -W "${commands.map(word).join(' ')} help" -- "$cur")); fi
    return
  fi
  local subs="" opts="" vals=""
  case "$cmd" in
${bashCases(program).join('\n')}
  esac
  if [[ -n $subs && $COMP_CWORD -eq $((i + 1)) && $cur != -* ]]; then COMPREPLY=($(compgen -W "$subs" -- "$cur")); return; fi
  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); return; fi
  COMPREPLY=($(compgen -f -- "$cur"))
}
complete -o filenames -o bashdefault -F _${name}_complete ${name}
`;
}

/** zsh `_arguments` spec of one option: '--repo[repository]:value:_files'. */
function zshOption(o: Option): string {
  const desc = (o.description || '').replace(/[[\]':\\]/g, ' ').slice(0, 80);
  const flags = [o.short, o.long].filter(Boolean) as string[];
  const value = o.required || o.optional ? ':value:_files' : '';
  const spec = flags.length > 1 ? `{${flags.join(',')}}'[${desc}]${value}'` : `'${flags[0]}[${desc}]${value}'`;
  return spec;
}

function zshDescribe(cmds: Command[]): string {
  return cmds
    .map(
      (c) =>
        `'${word(c.name())}:${c
          .description()
          .replace(/['\\:]/g, ' ')
          .slice(0, 70)}'`,
    )
    .join(' ');
}

export function zshCompletion(program: Command): string {
  const name = word(program.name());
  const arms = visibleCommands(program).map((c) => {
    const subs = visibleCommands(c);
    const sub = subs.length ? ` '1:subcommand:((${subs.map((s) => word(s.name())).join(' ')}))'` : '';
    const names = [c.name(), ...c.aliases()].map(word).join('|');
    return `      ${names}) _arguments ${visibleOptions(c).map(zshOption).join(' ')}${sub} '*:file:_files' ;;`;
  });
  return `#compdef ${name}
# zsh completion for ${name}, generated from its command definitions by \`${name} completion zsh\`.
# Install: ${name} completion zsh > "\${fpath[1]}/_${name}"   (or: source <(${name} completion zsh))
_${name}() {
  local -a commands
  commands=(${zshDescribe(visibleCommands(program))})
  local state
  _arguments -C ${visibleOptions(program).map(zshOption).join(' ')} '1: :->command' '*:: :->args'
  case $state in
    command) _describe -t commands '${name} command' commands ;;
    args)
      case $words[1] in
${arms.join('\n')}
      esac ;;
  esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then _${name} "$@"; else compdef _${name} ${name}; fi
`;
}

export function register(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script (bash or zsh), generated from the command definitions')
    .argument('<shell>', 'bash | zsh')
    .addHelpText(
      'after',
      `
Examples:
  snapfill completion bash > /etc/bash_completion.d/snapfill
  source <(snapfill completion zsh)`,
    )
    .action(
      action(async (_g, [shell]) => {
        if (shell !== 'bash' && shell !== 'zsh') throw new Error(`completion: expected bash or zsh, got "${shell}"`);
        process.stdout.write(shell === 'bash' ? bashCompletion(program) : zshCompletion(program));
      }),
    );
}
