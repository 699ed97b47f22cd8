/** ListRuns: newest first, filtered by state, a page at a time. */
import { ppoCoordinator } from "@rlhf/proto";
import { InvalidArgumentError } from "@rlhf/errors";

/**
 * One page of `runs` (20 by default, at most 100), newest first, in the states asked for (all
 * when none). A page token is the filter and the offset; one from another filter is INVALID_ARGUMENT.
 */
export function listRuns(runs: readonly ppoCoordinator.Run[], req: ppoCoordinator.ListRunsRequest): ppoCoordinator.ListRunsResponse {
  const size = req.pageSize === 0 ? 20 : Math.min(req.pageSize, 100);
  const filter = [...req.states].sort().join(",");
  let offset = 0;
  if (req.pageToken) {
    const [f, o] = Buffer.from(req.pageToken, "base64url").toString().split("|");
    if (f !== filter || !/^\d+$/.test(o ?? "")) throw new InvalidArgumentError("page_token", "not a token of this listing");
    offset = Number(o);
  }
  const all = runs.filter((r) => req.states.length === 0 || req.states.includes(r.state)).sort((a, b) => (b.createTime?.getTime() ?? 0) - (a.createTime?.getTime() ?? 0));
  const page = all.slice(offset, offset + size);
  const next = offset + size < all.length ? Buffer.from(`${filter}|${offset + size}`).toString("base64url") : "";
  return { runs: page, nextPageToken: next };
}
