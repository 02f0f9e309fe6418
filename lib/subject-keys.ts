/**
 * The key table and KMS key of crypto-shredding (lambdas/core/subjects.ts), and the grants on them.
 * The key table has no point-in-time recovery and no stream: a subject's data key, once removed by
 * an erasure, is in no backup (the event table's 35 days of point-in-time recovery hold only
 * ciphertext of personal data). Writers may get and put-if-absent keys, readers may get them, and
 * only an eraser may update an item (remove the key); nobody may delete one, so the erasure record
 * (who, when) stays.
 */
import { type RemovalPolicy, Validations } from "aws-cdk-lib";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import type { Construct } from "constructs";
import { SUBJECTS } from "../lambdas/core/constants.ts";

/** Key table statements hold to subjects' items, as the event table's to their key prefixes. */
const SUBJECT_ITEMS = { "ForAllValues:StringLike": { "dynamodb:LeadingKeys": [`${SUBJECTS.keyPrefix}*`] } };

export interface SubjectKeys {
  /** One item per subject: its wrapped data key, or after an erasure who erased it and when. */
  readonly table: dynamodb.TableV2;
  /** Wraps the subjects' data keys (GenerateDataKey, Decrypt); rotated yearly. */
  readonly key: kms.Key;
}

export function buildSubjectKeys(
  scope: Construct,
  options: { readonly removalPolicy: RemovalPolicy; readonly deletionProtection: boolean },
): SubjectKeys {
  const key = new kms.Key(scope, "SubjectKey", {
    description: "Cairn: wraps the data keys of subjects' personal data (crypto-shredding)",
    enableKeyRotation: true,
    removalPolicy: options.removalPolicy,
  });
  const table = new dynamodb.TableV2(scope, "KeyTable", {
    partitionKey: { name: SUBJECTS.keyAttr, type: dynamodb.AttributeType.STRING },
    billing: dynamodb.Billing.onDemand(),
    // No backup may outlive an erasure: the whole point of this table.
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: false },
    deletionProtection: options.deletionProtection,
    removalPolicy: options.removalPolicy,
    encryption: dynamodb.TableEncryptionV2.awsManagedKey(),
  });
  Validations.of(table).acknowledge({
    id: "AwsSolutions-DDB3",
    reason:
      "The key table of crypto-shredding has no point-in-time recovery on purpose: a backup would keep a subject's data key after its erasure. Its data keys are wrapped by KMS.",
  });
  return { table, key };
}

/** What appends need: read a subject's key, or put it when the subject has none; a new data key, or open one. */
export function grantKeysForWrite(keys: SubjectKeys, grantee: iam.IGrantable): void {
  iam.Grant.addToPrincipal({
    grantee,
    actions: ["dynamodb:GetItem", "dynamodb:PutItem"],
    resourceArns: [keys.table.tableArn],
    conditions: SUBJECT_ITEMS,
  });
  iam.Grant.addToPrincipal({
    grantee,
    actions: ["kms:GenerateDataKey", "kms:Decrypt"],
    resourceArns: [keys.key.keyArn],
  });
}

/** What reads need: get subjects' keys (one by one or in batches) and open them. */
export function grantKeysForRead(keys: SubjectKeys, grantee: iam.IGrantable): void {
  iam.Grant.addToPrincipal({
    grantee,
    actions: ["dynamodb:GetItem", "dynamodb:BatchGetItem"],
    resourceArns: [keys.table.tableArn],
    conditions: SUBJECT_ITEMS,
  });
  iam.Grant.addToPrincipal({ grantee, actions: ["kms:Decrypt"], resourceArns: [keys.key.keyArn] });
}

/** What an erasure needs: one UpdateItem that removes the key and records who and when. Nothing else. */
export function grantKeysForErase(keys: SubjectKeys, grantee: iam.IGrantable): iam.Grant {
  return iam.Grant.addToPrincipal({
    grantee,
    actions: ["dynamodb:UpdateItem"],
    resourceArns: [keys.table.tableArn],
    conditions: SUBJECT_ITEMS,
  });
}
