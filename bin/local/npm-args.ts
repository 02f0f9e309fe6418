/**
 * `npm start --port 4000` without `--`: npm takes the options it does not know for its own config
 * and passes them to the script as `npm_config_<name>` variables. npm 10 and 11 read an unknown
 * option as a flag (`npm_config_port=true`) and pass its value on as a plain argument (`4000`);
 * `--port=4000` arrives whole (`npm_config_port=4000`); a repeated option is its values joined by
 * blank lines. These put such options back into `cairn dev`'s arguments, so they work with or
 * without `--`. npm keeps `--help` for itself: `npm start -- --help`.
 */

/** An option of `cairn dev`: its long name and whether it takes a value. */
export interface OptionShape {
  readonly name: string;
  readonly takesValue: boolean;
}

/**
 * The arguments `cairn dev` should parse: `args` (what npm passed on) with the options npm put in
 * `npm_config_*` variables before them, each with its value (a plain argument of `args`, in order,
 * where npm split it off, from the front). Only under `npm start` (`npm_lifecycle_event`); elsewhere `args` as is.
 */
export function withNpmConfig(
  args: readonly string[],
  options: readonly OptionShape[],
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  if (env.npm_lifecycle_event !== "start") return [...args];
  // npm puts the values it split off first, before what came after `--`.
  const leading = args.findIndex((arg) => arg.startsWith("-"));
  const plain = leading === -1 ? args : args.slice(0, leading);
  let split = 0;
  const restored: string[] = [];
  // npm sets the variables in the order the options came, so split-off values pair up in order.
  for (const [key, raw] of Object.entries(env)) {
    if (!key.startsWith("npm_config_") || raw === undefined) continue;
    const option = options.find((o) => `npm_config_${o.name.replaceAll("-", "_")}` === key);
    if (!option) continue;
    for (const value of raw.split("\n\n")) {
      if (!option.takesValue) {
        if (value !== "" && value !== "false") restored.push(`--${option.name}`);
        continue;
      }
      if (value === "true") {
        const next = plain[split];
        if (next === undefined) continue;
        split++;
        restored.push(`--${option.name}`, next);
      } else {
        restored.push(`--${option.name}`, value);
      }
    }
  }
  return [...restored, ...args.slice(split)];
}
