-- A live code stopped (停用): WeCom deleted its contact way, so its QR adds no one; the code and
-- its figures stay, and the rota no longer moves it.
ALTER TABLE live_codes ADD COLUMN disabled_at INTEGER;
