import { CfnOutput, Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { PROJECTIONS } from "../lambdas/projections/registry.ts";
import { EventStore, type EventStoreProps } from "./event-store.ts";

export interface CairnStackProps extends StackProps {
  /**
   * Settings of the event store.
   * @default - the EventStore defaults (retained, protected table; IAM-authorized API)
   */
  readonly store?: EventStoreProps;
}

/** The default deployment: one EventStore with every projection of lambdas/projections/registry.ts. */
export class CairnStack extends Stack {
  public readonly store: EventStore;

  constructor(scope: Construct, id: string, props: CairnStackProps = {}) {
    super(scope, id, props);
    this.store = new EventStore(this, "Store", props.store);
    for (const { name, entry, eventTypes, categories } of PROJECTIONS) {
      this.store.addProjection(name, { entry, eventTypes, categories });
    }

    new CfnOutput(this, "ApiUrl", { value: this.store.stage.url, description: "Base URL of the HTTP API" });
    new CfnOutput(this, "TableName", { value: this.store.table.tableName });
    new CfnOutput(this, "WakeTopicArn", { value: this.store.wakeTopic.topicArn });
    new CfnOutput(this, "SequencerFailureQueueUrl", { value: this.store.sequencerFailures.queueUrl });
    new CfnOutput(this, "AlarmTopicArn", {
      value: this.store.alarmTopic.topicArn,
      description: "Every alarm notifies this topic: subscribe whoever must be told",
    });
    new CfnOutput(this, "DashboardName", { value: this.store.dashboard.dashboardName });
    new CfnOutput(this, "Region", { value: this.region });
  }
}
