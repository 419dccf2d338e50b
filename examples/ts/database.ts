// The app's own database module, as `./database` in the Memori docs: here an in-memory table
// of each user's latest chat session. A real app keeps it in its SQL database.
interface ChatSessionRow {
  sessionId: string;
  lastUsed: number;
}

const chatSessions = new Map<string, ChatSessionRow>();

export const db = {
  /** The user's latest session id, if it was used within `withinMs`. */
  async findRecentSession(userId: string, withinMs: number): Promise<string | undefined> {
    const row = chatSessions.get(userId);
    return row !== undefined && Date.now() - row.lastUsed < withinMs ? row.sessionId : undefined;
  },

  async saveSession(userId: string, sessionId: string): Promise<void> {
    chatSessions.set(userId, { sessionId, lastUsed: Date.now() });
  },
};
