import { type AttributeValue, type DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";

/** Every item of a table as text, binary values decoded too (a ciphertext holding a marker would show). */
export async function tableText(client: DynamoDBClient, tableName: string): Promise<string> {
  let text = "";
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: tableName, ExclusiveStartKey: startKey }));
    for (const item of page.Items ?? []) text += valueText({ M: item });
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return text;
}

/** An attribute value as text: strings and binaries as they are, maps and lists value by value. */
export function valueText(value: AttributeValue): string {
  if (value.S !== undefined) return `${value.S}\n`;
  if (value.B !== undefined) return `${Buffer.from(value.B).toString("latin1")}\n`;
  if (value.M !== undefined) return Object.values(value.M).map(valueText).join("");
  if (value.L !== undefined) return value.L.map(valueText).join("");
  return `${JSON.stringify(value)}\n`;
}
