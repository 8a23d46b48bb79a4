/** The admin token (sessionStorage), as React state that follows logins and logouts. */
import { useEffect, useState } from 'react';
import { adminToken } from './api';

export function useAdminToken(): string | null {
  const [token, setToken] = useState(adminToken);
  useEffect(() => {
    const update = () => setToken(adminToken());
    window.addEventListener('concord-auth', update);
    return () => window.removeEventListener('concord-auth', update);
  }, []);
  return token;
}
