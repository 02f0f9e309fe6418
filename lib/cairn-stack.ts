import { CfnOutput, Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { EventStore, type EventStoreProps } from "./event-store.ts";

export interface CairnStackProps extends StackProps {
  /**
   * Settings of the event store.
   * @default - the EventStore defaults (retained, protected table; IAM-authorized API)
   */
  readonly store?: EventStoreProps;
}

/**
 * This repository's default deployment: one EventStore with no domain (any event type and data) and
 * no projection, and its outputs. A team's own app adds its domain and projections to its own
 * EventStore (examples/orders).
 */
export class CairnStack extends Stack {
  public readonly store: EventStore;

  constructor(scope: Construct, id: string, props: CairnStackProps = {}) {
    super(scope, id, props);
    this.store = new EventStore(this, "Store", props.store);

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
