import { App } from "aws-cdk-lib";
import { OrdersStack } from "../lib/orders-stack.ts";

/** The order app's CDK app: `npx cdk synth` / `npx cdk deploy` from this directory. */
const app = new App();
new OrdersStack(app, app.node.tryGetContext("stackName") ?? "CairnOrders");
