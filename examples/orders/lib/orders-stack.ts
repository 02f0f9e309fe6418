import { CfnOutput, Stack, type StackProps } from "aws-cdk-lib";
import { EventStore } from "cairn-event-store/cdk";
import type { Construct } from "constructs";

/**
 * The order app on AWS: a Cairn event store that validates and upcasts with the order domain, the
 * order-summary projection and the order command handler, all from this app's own files (paths
 * relative to the directory `cdk` runs in, this app's root).
 */
export class OrdersStack extends Stack {
  public readonly store: EventStore;

  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, id, props);
    this.store = new EventStore(this, "Store", { domain: { entry: "src/domain.ts" } });
    this.store.addProjection("order-summary", {
      entry: "src/projections/order-summary.ts",
      categories: ["Order"],
    });
    const commands = this.store.addCommandHandler("OrderCommands", { entry: "src/handler.ts" });

    new CfnOutput(this, "ApiUrl", { value: this.store.stage.url });
    new CfnOutput(this, "TableName", { value: this.store.table.tableName });
    new CfnOutput(this, "CommandHandler", { value: commands.functionName });
  }
}
