// A sign-in route and form of the kind an agent writes: passwords, secrets and tokens handled,
// none of them present.
import bcrypt from "bcrypt";
import jwt from "jsonwebtoken";
import { z } from "zod";

export const signInSchema = z.object({
  email: z.string().email(),
  password: z.string().min(8, "Password must be at least 8 characters"),
});

export interface User {
  id: string;
  email: string;
  passwordHash: string;
  password?: string;
}

const config = {
  secret: process.env.JWT_SECRET!,
  clientSecret: process.env.OAUTH_CLIENT_SECRET ?? "",
  password: process.env.DATABASE_PASSWORD,
  expiresIn: "1h",
};

export async function signIn(req: Request, users: Map<string, User>) {
  const { email, password } = signInSchema.parse(await req.json());
  const user = users.get(email);
  if (!user || !(await bcrypt.compare(password, user.passwordHash))) {
    return new Response(JSON.stringify({ error: "wrong email or password" }), { status: 401 });
  }
  const token = jwt.sign({ sub: user.id }, config.secret, { expiresIn: config.expiresIn });
  return new Response(JSON.stringify({ token }), { status: 200 });
}

export function authorize(header: string | null): string | null {
  const token = header?.split(" ")[1];
  if (!token) return null;
  const payload = jwt.verify(token, config.secret) as { sub: string };
  return payload.sub;
}

export function SignInForm({ onSubmit }: { onSubmit: (email: string, password: string) => void }) {
  const [password, setPassword] = useState("");
  const [secret, setSecret] = useState<string | null>(null);
  return (
    <form onSubmit={() => onSubmit(email, password)}>
      <label htmlFor="password">Password:</label>
      <input id="password" type="password" name="password" value={password}
             onChange={(e) => setPassword(e.target.value)} />
      {secret && <p>Your recovery secret: {secret}</p>}
    </form>
  );
}
