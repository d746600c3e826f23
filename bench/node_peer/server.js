// The seed's four routes as a Node.js team would write them for a Lambda-era service: express,
// jsonwebtoken, pg and crypto.pbkdf2, two worker processes under Node's cluster module (as the
// Flask peer has gunicorn workers). It reads the Flask peer's users table and hashes
// (PBKDF2-HMAC-SHA256, "salt$hex"), so both peers answer for the same accounts. It is a
// baseline for bench/run.py: written plainly, not tuned.
'use strict';

const cluster = require('node:cluster');
const crypto = require('node:crypto');
const express = require('express');
const jwt = require('jsonwebtoken');
const { Pool } = require('pg');

const PORT = Number(process.env.PORT || 3000);
const WORKERS = Number(process.env.WORKERS || 2);
const SECRET_KEY = process.env.SECRET_KEY;
const ITERATIONS = Number(process.env.PBKDF2_ITERATIONS || 600000);

if (cluster.isPrimary) {
  for (let i = 0; i < WORKERS; i += 1) cluster.fork();
  cluster.on('exit', () => process.exit(1));
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers)) w.kill('SIGTERM');
    process.exit(0);
  });
} else {
  const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
  const app = express();
  app.use(express.json());

  const pbkdf2 = (password, salt) =>
    new Promise((resolve, reject) => {
      crypto.pbkdf2(password, salt, ITERATIONS, 32, 'sha256', (err, key) =>
        err ? reject(err) : resolve(key.toString('hex')));
    });

  async function verifyPassword(password, stored) {
    const [salt, hash] = stored.split('$');
    const digest = await pbkdf2(password, salt);
    return crypto.timingSafeEqual(Buffer.from(digest), Buffer.from(hash));
  }

  function tokenRequired(req, res, next) {
    const auth = req.get('Authorization') || '';
    if (!auth.startsWith('Bearer ')) return res.status(401).json({ message: 'Token is missing' });
    try {
      req.tokenData = jwt.verify(auth.slice(7), SECRET_KEY, { algorithms: ['HS256'] });
    } catch (e) {
      return res.status(401).json({ message: 'Token is invalid' });
    }
    return next();
  }

  app.get('/health', async (req, res) => {
    try {
      await pool.query('SELECT 1');
      res.json({ status: 'healthy', database: 'connected' });
    } catch (e) {
      res.status(503).json({ status: 'unhealthy', database: e.message });
    }
  });

  app.get('/test-db', async (req, res) => {
    try {
      const { rows } = await pool.query('SELECT now() AS now');
      res.json({ status: 'success', timestamp: rows[0].now.toISOString() });
    } catch (e) {
      res.status(500).json({ status: 'error', message: e.message });
    }
  });

  app.post('/login', async (req, res) => {
    const body = req.body || {};
    const identifier = body.username || body.email;
    const { password } = body;
    if (!identifier || !password) return res.status(400).json({ message: 'Missing credentials' });
    try {
      const { rows } = await pool.query(
        'SELECT id, password_hash FROM users WHERE username = $1 OR email = $1 LIMIT 1', [identifier]);
      if (!rows.length || !(await verifyPassword(password, rows[0].password_hash))) {
        return res.status(401).json({ message: 'Invalid credentials' });
      }
      await pool.query('UPDATE users SET last_login = now() WHERE id = $1', [rows[0].id]);
      const token = jwt.sign({ user_id: rows[0].id }, SECRET_KEY, { algorithm: 'HS256', expiresIn: '1h' });
      return res.json({ token });
    } catch (e) {
      return res.status(500).json({ message: 'Internal error' });
    }
  });

  app.get('/profile', tokenRequired, async (req, res) => {
    try {
      const { rows } = await pool.query(
        'SELECT id, username, email, full_name, created_at, last_login FROM users WHERE id = $1',
        [req.tokenData.user_id]);
      if (!rows.length) return res.status(401).json({ message: 'Token is invalid' });
      const u = rows[0];
      return res.json({
        id: u.id,
        username: u.username,
        email: u.email,
        full_name: u.full_name,
        created_at: u.created_at ? u.created_at.toISOString() : null,
        last_login: u.last_login ? u.last_login.toISOString() : null,
      });
    } catch (e) {
      return res.status(500).json({ message: 'Internal error' });
    }
  });

  app.listen(PORT, '127.0.0.1');
}
