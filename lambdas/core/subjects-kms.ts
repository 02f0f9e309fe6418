/**
 * The data keys of subjects wrapped by a KMS key (crypto-shredding in AWS, subjects.ts): a new key
 * is `GenerateDataKey` (AES_256), opening one is `Decrypt`, both with the subject as encryption
 * context, so a wrapped key copied to another subject's item does not open. The construct creates
 * the KMS key and grants these two actions on it alone.
 */
import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from "@aws-sdk/client-kms";
import { KeyMaterialError } from "./errors.ts";
import type { KeyWrapper } from "./subjects.ts";

export function kmsKeyWrapper(kms: KMSClient, keyId: string): KeyWrapper {
  const context = (subjectId: string) => ({ "cairn:subject": subjectId });
  return {
    async generate(subjectId) {
      const answer = await kms.send(
        new GenerateDataKeyCommand({
          KeyId: keyId,
          KeySpec: "AES_256",
          EncryptionContext: context(subjectId),
        }),
      );
      if (!answer.Plaintext || !answer.CiphertextBlob) {
        throw new KeyMaterialError(`KMS key ${keyId} gave no data key for subject ${subjectId}`);
      }
      return { key: Buffer.from(answer.Plaintext), wrapped: answer.CiphertextBlob };
    },
    async unwrap(subjectId, wrapped) {
      const answer = await kms.send(
        new DecryptCommand({ KeyId: keyId, CiphertextBlob: wrapped, EncryptionContext: context(subjectId) }),
      );
      if (!answer.Plaintext)
        throw new KeyMaterialError(`KMS key ${keyId} did not open subject ${subjectId}'s key`);
      return Buffer.from(answer.Plaintext);
    },
  };
}
