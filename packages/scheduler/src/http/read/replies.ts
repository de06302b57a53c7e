import type { FastifyReply } from 'fastify';

/** A 400 with a short plain text, as the original answers on the SeaTable-facing endpoints. */
export function plainBadRequest(reply: FastifyReply, text: string): FastifyReply {
  return reply.code(400).type('text/plain; charset=utf-8').send(text);
}

/** A 400 as `{"error": ...}`, the body of the `/admin/runs/` and `/admin/statistics/by-*` endpoints. */
export function jsonBadRequest(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(400).send({ error: message });
}
