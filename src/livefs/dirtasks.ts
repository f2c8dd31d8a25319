import type { WorkerPool } from './pool.js';

/**
 * The one scheduler of directory work over a worker pool (verify and restore): hands
 * directories to workers until none is left and none is busy. Each idle worker gets a fair
 * share of the queue (so none starves while another is busy); a worker works the directories
 * it finds below its share itself up to a budget and hands back the rest, which go to whoever
 * is idle next. The queue is a stack (depth first): it holds about depth x fan-out tasks, not
 * every directory of the tree.
 *
 * `request` turns tasks into a message; `onReply` merges a reply and pushes the tasks it
 * handed back onto the queue it is given; `perWorker` requests may be in flight per worker (2
 * keeps a worker busy while the orchestrator handles its previous reply). The first failure
 * stops handing out work and is thrown once the busy workers have answered.
 */
export async function runDirTasks<Task, Request extends object, Reply extends { id: number }>(
  pool: WorkerPool<Request, Reply>,
  queue: Task[],
  request: (tasks: Task[]) => Request,
  onReply: (reply: Reply, queue: Task[]) => void,
  perWorker = 1,
): Promise<void> {
  let busy = 0;
  let failed = null as Error | null; // (assigned in callbacks: keep the type wide)
  let wake: () => void = () => {};
  while (queue.length || busy) {
    while (queue.length && busy < pool.size * perWorker && !failed) {
      const take = Math.max(1, Math.ceil(queue.length / (pool.size * perWorker)));
      busy++;
      pool
        .submit(request(queue.splice(queue.length - take, take)))
        .then(
          (m) => onReply(m, queue),
          (e: Error) => {
            failed ??= e;
          },
        )
        .catch((e: Error) => {
          failed ??= e;
        })
        .finally(() => {
          busy--;
          wake();
        });
    }
    if (busy)
      await new Promise<void>((r) => {
        wake = r;
      });
    if (failed) queue.length = 0;
  }
  if (failed) throw failed;
}
