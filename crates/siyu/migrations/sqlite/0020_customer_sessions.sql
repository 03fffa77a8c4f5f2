-- A customer's pages sign in with a token that names this version; raising it ends every
-- token issued before (a lost phone, a shared link, a customer who asks).
ALTER TABLE customers ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0;
