// Who is logged in and what they may do (kept apart from main.js so pages can import it).
export const session = { user: null, permissions: [] };
export function can(perm) { return session.permissions.includes(perm); }
