import type { FastifyReply } from 'fastify';

/**
 * A 400 with a short text, as the original answers on the SeaTable-facing endpoints (Flask
 * sends such texts as `text/html`, and so does the rest of this API).
 */
export function plainBadRequest(reply: FastifyReply, text: string): FastifyReply {
  return reply.code(400).type('text/html; charset=utf-8').send(text);
}

/** A 400 as `{"error": ...}`, the body of the `/admin/runs/` and `/admin/statistics/by-*` endpoints. */
export function jsonBadRequest(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(400).send({ error: message });
}
