-- Who redeemed a coupon: the store staff member or program that typed its code (console:<user>,
-- api:<key>), for the guide's own figures.
ALTER TABLE coupons ADD COLUMN redeemed_by TEXT;
