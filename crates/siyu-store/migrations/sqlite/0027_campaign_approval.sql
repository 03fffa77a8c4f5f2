-- A campaign whose audience reaches the brand's approval size waits for a second person
-- (maker-checker): who asked to send it and when, and who approved it and when.
ALTER TABLE campaigns ADD COLUMN approval_asked_by TEXT;
ALTER TABLE campaigns ADD COLUMN approval_asked_at INTEGER;
ALTER TABLE campaigns ADD COLUMN approved_by TEXT;
ALTER TABLE campaigns ADD COLUMN approved_at INTEGER;
