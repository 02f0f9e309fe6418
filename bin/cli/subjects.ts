/**
 * `cairn subjects erase <subjectId> --yes`: crypto-shredding through the HTTP API
 * (`POST /subjects/{subjectId}/erase`, access `erase`), as any client does. Destroys the subject's
 * key for good, so it asks for `--yes` as the other commands that destroy do.
 */
import type { Command } from "commander";
import { action, CliError } from "./errors.ts";
import { withTarget } from "./streams.ts";
import { clientOf, type TargetOptions } from "./target.ts";

interface EraseOptions extends TargetOptions {
  readonly yes?: boolean;
  readonly json?: boolean;
}

async function erase(subjectId: string, options: EraseOptions): Promise<void> {
  if (!options.yes) {
    throw new CliError(
      `erase destroys ${subjectId}'s key: its events read back with data: null for good and its appends are refused; pass --yes to do it`,
    );
  }
  const client = await clientOf(options);
  const erasure = await client.eraseSubject(subjectId);
  console.log(
    options.json
      ? JSON.stringify(erasure)
      : `erased ${erasure.subjectId} at ${erasure.erasedAt} by ${erasure.erasedBy} (erasing again answers this same record)`,
  );
}

export function addSubjectCommands(program: Command): void {
  const subjects = program
    .command("subjects")
    .description("erasure of a subject's personal data (crypto-shredding)");
  withTarget(
    subjects
      .command("erase")
      .description(
        "destroy a subject's key: every event appended with its metadata.subjectId reads back with data: null, erased: true",
      )
      .argument("<subjectId>", "the subject (metadata.subjectId of its events)")
      .option("--yes", "yes, erase it")
      .option("--json", "print the erasure's record as JSON"),
  ).action(action(erase));
}
