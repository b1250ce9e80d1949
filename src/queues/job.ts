import * as z from "zod";

/** A message on JOBS: go on with job `id` (src/ops/jobs.ts); its progress is in the ledger, not in the message. */
export const jobMessageSchema = z.object({ kind: z.literal("job"), id: z.int().min(1) });
export type JobMessage = z.infer<typeof jobMessageSchema>;
