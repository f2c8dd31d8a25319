/** How a front end spells one of the library's option names: the CLI turns `accountsRoot` into `--accounts-root`. */
export type OptionNamer = (option: string) => string;

/** A message that names options: rendered once in the library's terms, again by a front end in its own. */
export type OptionText = (name: OptionNamer) => string;

/** The library names its options as a program passes them (`mode`, `accountsRoot`). */
const libraryName: OptionNamer = (option) => option;

/**
 * An error about the options a caller passed. The library speaks in options, not flags: its
 * message names them as the API spells them, and a front end re-renders the same sentence with
 * its own spelling (`messageFor`), so the CLI can say "--mode" without the library knowing flags.
 */
export class OptionError extends Error {
  private readonly text: OptionText;

  constructor(text: string | OptionText) {
    const render: OptionText = typeof text === 'string' ? () => text : text;
    super(render(libraryName));
    this.text = render;
    this.name = 'OptionError';
  }

  messageFor(name: OptionNamer): string {
    return this.text(name);
  }
}

/** The one line every command says when a native addon (livefs, livefs_read, blobcodec) is not built (issue 17). */
export const NATIVE_MISSING = 'native addon not built: run `npm rebuild` (needs g++, make, python3, libdeflate-dev)';
