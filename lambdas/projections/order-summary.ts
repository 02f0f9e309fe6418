/** The example projection (work in progress: the global-order issue builds it). */
export const handler = async (_event: unknown): Promise<void> => {
  throw new Error("the order-summary projection is not built yet");
};
